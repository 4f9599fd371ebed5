"""Run logging: JSONL lines in order with the run's wall clock, W&B offline into the run directory, W&B
failures never fatal."""

import json

import pytest

from mtrl import logger as logger_module
from mtrl.logger import ELAPSED, RunLogger, WandbConfig, read_metrics, resolve_mode, without_wall_clock


def test_jsonl_has_one_line_per_log_call(tmp_path):
    logger = RunLogger(tmp_path, {"seed": 0}, WandbConfig(mode="disabled"), name="t")
    logger.log(10, {"train/critic_loss": 1.5})
    logger.log(20, {"eval/success": 0.25, "eval/reach-v3/success": 0.5})
    logger.close()
    assert [without_wall_clock(line) for line in read_metrics(tmp_path)] == [
        {"step": 10, "train/critic_loss": 1.5},
        {"step": 20, "eval/success": 0.25, "eval/reach-v3/success": 0.5},
    ]


def test_auto_mode_is_offline_without_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto") == "online"
    assert resolve_mode("disabled") == "disabled"


def test_offline_wandb_run_lands_in_the_run_directory(tmp_path):
    logger = RunLogger(tmp_path, {"seed": 1}, WandbConfig(mode="offline"), name="offline-test")
    logger.log(1, {"eval/success": 1.0})
    logger.close()
    run_id = (tmp_path / "wandb_run_id").read_text()
    assert any(run_id in p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["eval/success"] == 1.0


def test_wandb_that_cannot_start_warns_once_and_logging_goes_on(tmp_path):
    # An entity/project W&B refuses (a project name with a slash is invalid) fails at init.
    with pytest.warns(UserWarning, match="W&B could not start"):
        logger = RunLogger(tmp_path, {}, WandbConfig(mode="offline", project="bad/name"), name="x")
    logger.log(5, {"eval/success": 0.5})
    logger.close()
    assert [without_wall_clock(line) for line in read_metrics(tmp_path)] == [{"step": 5, "eval/success": 0.5}]


def test_auto_mode_without_a_key_warns_once_and_logs_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    with pytest.warns(UserWarning, match="no W&B API key: logging offline") as caught:
        logger = RunLogger(tmp_path, {}, WandbConfig(mode="auto"), name="auto")
    logger.close()
    assert len(caught) == 1
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_online_without_network_falls_back_to_offline(monkeypatch, tmp_path):
    # A real connection failure: nothing listens on port 9 of this machine. Wait 3 s instead of 30.
    monkeypatch.setattr(logger_module, "WANDB_INIT_TIMEOUT_S", 3)
    monkeypatch.setenv("WANDB_API_KEY", "0123456789" * 4)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    with pytest.warns(UserWarning, match="W&B online failed .*; logging offline instead"):
        logger = RunLogger(tmp_path, {}, WandbConfig(mode="online"), name="no-network")
    logger.log(1, {"eval/success": 1.0})
    logger.close()
    run_id = (tmp_path / "wandb_run_id").read_text()
    assert any(run_id in p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert [without_wall_clock(line) for line in read_metrics(tmp_path)] == [{"step": 1, "eval/success": 1.0}]


def test_resumed_log_is_cut_back_to_the_checkpoint(tmp_path):
    logger = RunLogger(tmp_path, {}, WandbConfig(mode="disabled"), name="r")
    logger.log(10, {"a": 1.0})
    position = logger.position
    logger.log(20, {"a": 2.0})
    logger.close()
    with (tmp_path / "metrics.jsonl").open("a") as file:
        file.write('{"step": 30, "a"')  # a line the crash cut in half
    resumed = RunLogger(tmp_path, {}, WandbConfig(mode="disabled"), name="r", resume_at=position)
    assert resumed._wandb_has_step == 20  # W&B already had step 20: it is not sent again
    resumed.log(20, {"a": 2.0})
    resumed.close()
    lines = [without_wall_clock(line) for line in read_metrics(tmp_path)]
    assert lines == [{"step": 10, "a": 1.0}, {"step": 20, "a": 2.0}]


def test_every_line_carries_the_wall_clock_and_a_resumed_run_continues_it(tmp_path):
    first = iter([100.0, 101.5, 104.0, 110.0])  # the logger's start, then one reading per line
    logger = RunLogger(tmp_path, {}, WandbConfig(mode="disabled"), name="c", clock=lambda: next(first))
    logger.log(10, {"a": 1.0})
    logger.log(20, {"a": 2.0})
    position = logger.position  # a checkpoint here
    logger.log(30, {"a": 3.0})  # lost in the crash, redone after the resume
    logger.close()
    assert [line[ELAPSED] for line in read_metrics(tmp_path)] == [1.5, 4.0, 10.0]

    second = iter([500.0, 500.25])  # another process: its clock has nothing to do with the first one's
    resumed = RunLogger(
        tmp_path, {}, WandbConfig(mode="disabled"), name="c", resume_at=position, clock=lambda: next(second)
    )
    resumed.log(30, {"a": 3.0})
    resumed.close()
    # the second session starts where the last kept line stood: the redone work is counted once
    assert [line[ELAPSED] for line in read_metrics(tmp_path)] == [1.5, 4.0, 4.25]


def test_resumed_logger_continues_the_same_wandb_run(tmp_path):
    first = RunLogger(tmp_path, {}, WandbConfig(mode="offline"), name="resume")
    first.log(1, {"a": 1.0})
    position = first.position
    first.close()
    run_id = (tmp_path / "wandb_run_id").read_text()
    resumed = RunLogger(tmp_path, {}, WandbConfig(mode="offline"), name="resume", resume_at=position)
    assert resumed._wandb.id == run_id
    resumed.log(2, {"a": 2.0})
    resumed.close()
    assert (tmp_path / "wandb_run_id").read_text() == run_id
    assert [without_wall_clock(line) for line in read_metrics(tmp_path)] == [
        {"step": 1, "a": 1.0},
        {"step": 2, "a": 2.0},
    ]


def test_a_wandb_failure_during_log_warns_once_and_the_local_log_goes_on(tmp_path):
    run = RunLogger(tmp_path, {"a": 1}, WandbConfig(mode="offline"), name="t")
    run.log(1, {"x": 1.0})
    run._wandb.finish()  # a real W&B failure: logging into a run that has ended raises
    with pytest.warns(UserWarning, match="W&B logging failed") as warned:
        run.log(2, {"x": 2.0})
        run.log(3, {"x": 3.0})
    assert len(warned) == 1
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    run.close()
