"""Runs that survive: a run killed at an arbitrary step and resumed logs what an uninterrupted run logs.

The crash tests run `mtrl train` in a subprocess and kill it for real (SIGKILL: no handler runs; SIGTERM:
the run checkpoints and exits), then `mtrl train --resume` it and compare every metric line, bit for bit,
with an uninterrupted run of the same config (only the wall-clock values differ). Only the
process that is killed (or limited) runs apart: the uninterrupted runs and the resumes call the CLI's
`main` in this process, as the console script does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import RESUMABLE_TOY_FLAGS, assert_same_run, without_timing
from mtrl.agents import mt_sac

from mtrl import checkpoint, training
from mtrl.app import cli, run, wiring
from mtrl.app.config import EnvConfig, TrainConfig, load_run_config
from mtrl.app.resume import resume
from mtrl.logger import WandbConfig, read_metrics

# Meta-World on metaworld's own envs: 2 envs of reach-v3, 50 steps per task per iteration, two resets per env.
METAWORLD_FLAGS = """
    --agent mt_sac --agent.hidden-sizes 32 32
    --env.name MT1 --env.task reach-v3 --env.envs-per-task 2
    --loop.steps-per-task 1200 --loop.warmup-steps-per-task 300 --loop.steps-per-iteration 25
    --loop.batch-per-task 32 --loop.replay-per-task 2000 --loop.eval-every-steps-per-task 0
    --loop.eval-envs-per-task 2 --loop.eval-goals-per-task 2
    --loop.log-every-steps-per-task 100 --loop.checkpoint-every-steps-per-task 200 --wandb.mode disabled
""".split()
# An episodic meta-RL agent (MAML) on the goal-hidden toy family: 320 steps per task per iteration.
MAML_FLAGS = """
    --agent maml --agent.hidden-sizes 16 --agent.episodes-per-task 1
    --env.name toy-ml --env.envs-per-task 4 --loop.steps-per-task 9600
    --loop.eval-every-steps-per-task 3200 --loop.eval-envs-per-task 5 --loop.eval-goals-per-task 5
    --loop.meta-adaptation-episodes 1 --loop.meta-scored-episodes 1
    --loop.log-every-steps-per-task 640 --loop.checkpoint-every-steps-per-task 960 --wandb.mode disabled
""".split()


# a killed run and its resumption load what the uninterrupted run of the same flags compiled here
pytestmark = pytest.mark.usefixtures("compile_into_the_subprocess_cache")


def mtrl_train(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "mtrl.app.cli", "train", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output.decode(errors="replace")


def kill_after(process: subprocess.Popen, run_dir: Path, lines: int, signum: int) -> None:
    """Send `signum` once the run has a checkpoint and `lines` metric lines (an arbitrary point)."""
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        written = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        if written >= lines and checkpoint.steps(run_dir):
            process.send_signal(signum)
            return
        time.sleep(0.02)
    raise AssertionError(f"the run ended before it could be killed: {finish(process)[1][-2000:]}")


def uninterrupted(flags: list[str], run_dir: Path) -> Path:
    assert cli.main(["train", *flags, "--run-dir", str(run_dir)]) == 0
    return run_dir


def crash_and_resume(flags: list[str], run_dir: Path, lines: int, signum: int) -> str:
    """Run `flags` into `run_dir` in a subprocess, send `signum` at an arbitrary point, then resume the run
    (in this process); returns the killed run's output."""
    victim = mtrl_train([*flags, "--run-dir", str(run_dir)])
    kill_after(victim, run_dir, lines, signum)
    code, output = finish(victim)
    assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 130), output[-3000:]
    assert cli.main(["train", "--resume", str(run_dir)]) == 0
    return output


@pytest.fixture(scope="module")
def toy_reference(tmp_path_factory) -> Path:
    return uninterrupted(RESUMABLE_TOY_FLAGS, tmp_path_factory.mktemp("toy") / "reference")


# SIGKILL is slow: CI's kill without handlers is test_bench_smoke.py's crash_resume run (a toy run killed
# after a checkpoint and resumed, every metric line compared); SIGTERM here also compares the parameters
@pytest.mark.parametrize(
    "signum",
    [pytest.param(signal.SIGKILL, marks=pytest.mark.slow), signal.SIGTERM],
    ids=["SIGKILL", "SIGTERM"],
)
def test_toy_run_killed_and_resumed_matches_uninterrupted_run(toy_reference, tmp_path, signum):
    output = crash_and_resume(RESUMABLE_TOY_FLAGS, tmp_path / "crashed", lines=9, signum=signum)
    assert_same_run(toy_reference, tmp_path / "crashed")
    if signum == signal.SIGTERM:
        assert "continue with: mtrl train --resume" in output


# Slow: CI covers the pieces. A killed `mtrl train` resumed exactly: the toy runs above and the crash_resume
# bench; an env on the host through the checkpoint: test_native_seeds.py (native, resumed in a new run);
# the official backend's host envs continued from their saved state: test_metaworld_official.py
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["official", "native"])
def test_metaworld_run_killed_and_resumed_matches_uninterrupted_run(tmp_path, backend):
    flags = [*METAWORLD_FLAGS, "--env.backend", backend]
    reference = uninterrupted(flags, tmp_path / "reference")
    crash_and_resume(flags, tmp_path / "crashed", lines=7, signum=signal.SIGKILL)
    assert_same_run(reference, tmp_path / "crashed")


# Slow: CI has the episodic loop stopped and resumed exactly (test_episodic_training.py) and a killed
# `mtrl train` resumed exactly (the toy run above)
@pytest.mark.slow
def test_episodic_meta_run_killed_and_resumed_matches_uninterrupted_run(tmp_path):
    reference = uninterrupted(MAML_FLAGS, tmp_path / "reference")
    crash_and_resume(MAML_FLAGS, tmp_path / "crashed", lines=5, signum=signal.SIGKILL)
    assert_same_run(reference, tmp_path / "crashed")


def test_resuming_a_run_that_is_still_training_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "live"
    victim = mtrl_train([*RESUMABLE_TOY_FLAGS, "--run-dir", str(run_dir)])
    try:
        kill_after(victim, run_dir, lines=2, signum=0)  # signal 0: only wait until it is well under way
        assert cli.main(["train", "--resume", str(run_dir)]) == 2
        assert f"{run_dir} is being trained by pid {victim.pid}; stop it first" in capsys.readouterr().err
    finally:
        victim.send_signal(signal.SIGTERM)
        finish(victim)
    assert cli.main(["train", "--resume", str(run_dir)]) == 0  # once it stopped, resuming works


# In-process checks on one small toy run.
SMALL_LOOP = training.LoopConfig(
    steps_per_task=1_200,
    warmup_steps_per_task=200,
    steps_per_iteration=25,
    batch_per_task=16,
    replay_per_task=2_000,
    eval_every_steps_per_task=0,
    eval_envs_per_task=10,
    eval_goals_per_task=10,
    log_every_steps_per_task=200,
    checkpoint_every_steps_per_task=400,
)


def small_config(run_dir: Path, **agent) -> TrainConfig:
    return TrainConfig(
        agent=mt_sac.Config(hidden_sizes=(16,), **agent),
        env=EnvConfig(name="toy", envs_per_task=2, toy_num_tasks=2),
        loop=SMALL_LOOP,
        wandb=WandbConfig(mode="disabled"),
        run_dir=run_dir,
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return run.train(small_config(tmp_path_factory.mktemp("finished") / "run")).run_dir


def copy_run(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


# A failed read leaves tensorstore reads whose callbacks find orbax's event loop closed; mtrl drops
# exactly those errors. Reported, they print a traceback each and, formatted in tensorstore's threads,
# race CPython 3.11's AST constructor in the main thread (a SystemError in a later test).
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path / "run")
    newest, previous = checkpoint.steps(run_dir)[-1], checkpoint.steps(run_dir)[-2]
    for path in (run_dir / "checkpoints" / str(newest) / "train").rglob("*"):
        if path.is_file() and path.stat().st_size > 64:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a write cut short
    with pytest.warns(UserWarning, match=f"checkpoint {newest} .* unreadable"):
        resume(run_dir)
    assert without_timing(read_metrics(run_dir)) == without_timing(read_metrics(finished_run))
    assert checkpoint.steps(run_dir)[-2:] == [previous, newest]  # the resumed run rewrote the newest


def test_a_finished_run_is_not_resumed_and_a_larger_budget_trains_it_further(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path / "run")
    before = read_metrics(run_dir)
    with pytest.raises(ValueError, match="already finished .*resume with a larger --loop.steps-per-task"):
        resume(run_dir)
    assert read_metrics(run_dir) == before  # the refusal touched nothing
    stored = load_run_config(run_dir)
    longer = dataclasses.replace(stored, loop=dataclasses.replace(stored.loop, steps_per_task=1_600))
    resume(run_dir, longer)
    steps = checkpoint.steps(run_dir)
    assert steps[-1] == 1_600 * 2 and steps[-1] > checkpoint.steps(finished_run)[-1]  # 2 tasks
    assert load_run_config(run_dir).loop.steps_per_task == 1_600  # the new budget is the run's now
    assert max(r["step"] for r in read_metrics(run_dir)) > max(r["step"] for r in before)


# A failed read leaves tensorstore reads whose callbacks find orbax's event loop closed; mtrl drops
# exactly those errors. Reported, they print a traceback each and, formatted in tensorstore's threads,
# race CPython 3.11's AST constructor in the main thread (a SystemError in a later test).
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_all_checkpoints_unreadable_is_a_clear_refusal(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path / "run")
    for path in (run_dir / "checkpoints").rglob("manifest.ocdbt"):
        path.write_bytes(b"garbage")
    before = (run_dir / "metrics.jsonl").read_bytes()
    with pytest.warns(UserWarning), pytest.raises(checkpoint.CheckpointError, match="no readable checkpoint"):
        resume(run_dir)
    assert (run_dir / "metrics.jsonl").read_bytes() == before  # nothing touched


def test_resume_with_another_config_names_the_fields(finished_run):
    config = load_run_config(finished_run)
    changed = dataclasses.replace(config, agent=mt_sac.Config(hidden_sizes=(16,), actor_lr=1e-3), seed=5)
    with pytest.raises(ValueError, match=r"agent.actor_lr \(0.0003 -> 0.001\), seed \(0 -> 5\)"):
        resume(finished_run, changed)


def test_resume_from_the_cli_refuses_changed_fields(finished_run, capsys):
    assert cli.main(["train", "--resume", str(finished_run), "--agent.num-critics", "3"]) == 2
    assert "agent.num_critics (2 -> 3)" in capsys.readouterr().err


def test_resume_without_checkpoint_says_so(tmp_path):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(run.to_json(small_config(run_dir))))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resume(run_dir)


def test_divergence_stops_with_the_step_and_quantity_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    # A learning rate of 1e30 makes Adam's first step put the weights at ±1e30: the losses overflow for real.
    config = small_config(tmp_path / "run", actor_lr=1e30, critic_lr=1e30)
    config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, warmup_steps_per_task=400))
    # 2 tasks × 50 steps per iteration: warm-up ends at iteration 8 (a checkpoint at 800 env steps in all),
    # the first updates run in iteration 9, which ends at 900.
    with pytest.raises(training.Diverged, match=r"diverged at step 900: \S+ became NaN or infinite"):
        run.train(config)
    assert checkpoint.steps(config.run_dir) == [800]  # nothing after the divergence
    state = checkpoint.restore(
        config.run_dir, wiring.agent_template(config, wiring.make_eval_env(config).spec)
    )
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state))
    rerun = str(tmp_path / "cli")
    flags = ["--agent", "mt_sac", "--agent.actor-lr", "1e30", "--agent.critic-lr", "1e30"]
    flags += ["--env.name", "toy", "--loop.steps-per-task", "1000", "--loop.warmup-steps-per-task", "200"]
    flags += ["--loop.replay-per-task", "2000"]
    # the small run's sizes: the exit status is the point, not the network
    flags += ["--agent.hidden-sizes", "16", "--env.envs-per-task", "2", "--env.toy-num-tasks", "2"]
    flags += ["--loop.batch-per-task", "16", "--loop.steps-per-iteration", "25"]
    capsys.readouterr()
    assert cli.main(["train", *flags, "--wandb.mode", "disabled", "--run-dir", rerun]) == 1
    assert "mtrl: error: training diverged at step" in capsys.readouterr().err


def test_replay_that_cannot_fit_is_refused_before_anything_is_written(tmp_path):
    config = small_config(tmp_path / "run")
    huge = dataclasses.replace(config, loop=training.LoopConfig(replay_per_task=10**11))
    with pytest.raises(
        ValueError, match=r"replay of 100,000,000,000 per task needs .* GiB .* at most [\d,]+"
    ):
        run.train(huge)
    assert not config.run_dir.exists()


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(finished_run, tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse writes past a size, as a full disk does (EFBIG instead of ENOSPC).
    run_dir = copy_run(finished_run, tmp_path / "run")
    script = textwrap.dedent(
        f"""
        import resource, signal
        from mtrl import checkpoint
        from mtrl.app import run, wiring
        from mtrl.app.config import load_run_config
        from mtrl import training
        config = load_run_config({str(run_dir)!r})
        env = wiring.make_envs(config)[0]
        agent, keys = wiring.make_agent(config), run.seed_keys(config)
        template = training.train_state_template(env, agent, config.loop, keys)
        restored = checkpoint.restore_run({str(run_dir)!r}, template, host=False)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
        saver = checkpoint.Checkpointer({str(run_dir)!r})
        try:
            saver.save(10**6, restored.train_state, loop={{}})
        except checkpoint.CheckpointError as error:
            print("REFUSED", error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "REFUSED could not write the checkpoint at step 1000000" in result.stdout, result.stderr[-2000:]
    assert "previous checkpoint (step" in result.stdout
    assert checkpoint.steps(run_dir) == checkpoint.steps(finished_run)  # the failed one is not listed
    config = load_run_config(run_dir)  # and the newest checkpoint still reads back whole
    template = training.train_state_template(
        wiring.make_envs(config)[0], wiring.make_agent(config), config.loop, run.seed_keys(config)
    )
    assert checkpoint.restore_run(run_dir, template, host=False).step == checkpoint.steps(finished_run)[-1]
