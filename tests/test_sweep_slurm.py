"""`mtrl sweep --launcher slurm` against a real single-node Slurm (tests/slurm_cluster.py), never a mock.

One toy sweep of three identical runs is launched from the command line, and Slurm stops each run once, a
different way, while it trains:
- preempted: `scontrol requeue` (SIGTERM; Slurm puts the job back in the queue);
- at its time limit: USR2, the signal submitit has Slurm send before the limit (the job requeues itself);
- cancelled: `scancel` (SIGTERM; the launcher reports the run stopped, and launching again continues it).
Every run must end bit-identical to the same run trained without a stop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster
from helpers import RESUMABLE_TOY_FLAGS, assert_same_run

from mtrl import checkpoint
from mtrl.app import cli, slurm_queue
from mtrl.app.sweep_slurm import SlurmOptions, parse_memory, parse_time

SWEEP_FILE = """
from pathlib import Path

from mtrl.app.flags import train_command
from mtrl.app.sweep_grid import Sweep

SWEEP = Sweep(
    name="slurm",
    base=train_command({flags!r})[0],
    variants={{"preempted": {{}}, "timed-out": {{}}, "cancelled": {{}}}},
    root=Path({root!r}),
)
"""
# the three Slurm jobs load what the reference run, trained here first, compiled
pytestmark = pytest.mark.usefixtures("compile_into_the_subprocess_cache")
STOPS = {  # run -> the Slurm command that stops it, given its job id
    "preempted-s0": ["scontrol", "requeue"],
    "timed-out-s0": ["scancel", "--signal", "USR2"],
    "cancelled-s0": ["scancel"],
}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = slurm_cluster.missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI tests the Slurm launcher on a real Slurm: {reason}")
        pytest.skip(reason)
    with (
        slurm_cluster.single_node_slurm(tmp_path_factory.mktemp("slurm")) as env,
        pytest.MonkeyPatch.context() as patch,
    ):
        for name, value in env.items():
            patch.setenv(name, value)
        yield


def launch(sweep_file: Path, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "mtrl.app.cli", "sweep", str(sweep_file), "--launcher", "slurm"]
    command += ["--time", "30", "--cpus-per-run", "1", "--poll-seconds", "0.5", *flags]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_each_run_once_while_it_trains(runs: Path, launcher: subprocess.Popen) -> None:
    """Once a run has a checkpoint and 9 metric lines (of its 24), stop its job the run's way."""
    waiting = dict(STOPS)
    deadline = time.monotonic() + 600
    while waiting:
        assert time.monotonic() < deadline and launcher.poll() is None, launcher.communicate()[0][-3000:]
        for name, stop in list(waiting.items()):
            metrics = runs / name / "metrics.jsonl"
            lines = len(metrics.read_text().splitlines()) if metrics.exists() else 0
            if lines >= 9 and checkpoint.steps(runs / name):
                job = slurm_queue.job_file(runs / name).read_text().strip()
                subprocess.run([*stop, job], check=True)
                del waiting[name]
        time.sleep(0.05)


def test_runs_stopped_by_slurm_continue_exactly(slurm, tmp_path):
    reference = tmp_path / "reference"
    assert cli.main(["train", *RESUMABLE_TOY_FLAGS, "--run-dir", str(reference)]) == 0
    sweep_file = tmp_path / "sweep.py"
    sweep_file.write_text(SWEEP_FILE.format(flags=RESUMABLE_TOY_FLAGS, root=str(tmp_path / "runs")))
    runs = tmp_path / "runs" / "slurm"

    launcher = launch(sweep_file)
    stop_each_run_once_while_it_trains(runs, launcher)
    # the requeued job waits in the queue (Slurm holds it ~10 s): a second launcher must leave it alone
    listed = subprocess.run(
        [sys.executable, "-m", "mtrl.app.cli", "sweep", str(sweep_file), "--dry-run"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "preempted-s0 busy" in listed, listed
    output, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 130, output[-3000:]  # the cancelled run is stopped, resumable
    assert "2 done · 0 running · 0 queued · 0 failed · 1 stopped of 3 runs" in output, output[-3000:]

    relaunched = launch(sweep_file)
    output, _ = relaunched.communicate(timeout=600)
    assert relaunched.returncode == 0, output[-3000:]
    assert "skipping 2 finished run(s): preempted-s0, timed-out-s0" in output
    assert "resume   cancelled-s0 (slurm job" in output

    for name in STOPS:
        assert_same_run(reference, runs / name)
        log = (runs / "logs" / f"{name}.log").read_text()
        started = [line.split("  # ")[0] for line in log.splitlines() if line.startswith("$ mtrl train")]
        assert len(started) == 2 and "--resume" not in started[0] and "--resume" in started[1], log[-3000:]
        assert slurm_queue.exit_file(runs / name).read_text().strip() == "0"


def test_a_run_that_fails_on_slurm_is_reported_failed(slurm, tmp_path):
    """A learning rate of 1e30 makes the run diverge in its first update: exit status 1 in its job, `failed`
    in the launcher's table and exit status, and its log says why."""
    diverging = [*RESUMABLE_TOY_FLAGS, "--agent.actor-lr", "1e30", "--agent.critic-lr", "1e30"]
    text = SWEEP_FILE.format(flags=diverging, root=str(tmp_path / "runs"))
    (tmp_path / "sweep.py").write_text(text.replace('"timed-out": {}, "cancelled": {}', ""))
    launcher = launch(tmp_path / "sweep.py")
    output, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 1, output[-3000:]
    assert "0 done · 0 running · 0 queued · 1 failed of 1 runs" in output, output[-3000:]
    logs = tmp_path / "runs" / "slurm" / "logs"
    assert "mtrl: error: training diverged at step" in (logs / "preempted-s0.log").read_text()
    assert (logs / "preempted-s0.exit").read_text().strip() == "1"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90", 90), ("1:30", 2), ("2:00:00", 120), ("1-0", 1440), ("1-02:30", 1590), ("0-00:00:30", 1)],
)
def test_slurm_time_formats(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--launcher", "slurm", "--time", "1h"], "'1h'"),
        (["--launcher", "slurm", "--time", "3"], "--time 3 (minutes) leaves too little"),
        (["--launcher", "slurm", "--mem", "16"], "'16'"),
        (["--launcher", "slurm", "--sbatch", "account"], "'account'"),
        (["--launcher", "slurm", "--retries", "2"], "--retries"),
        (["--partition", "gpu"], "--partition"),
        (["--launcher", "pbs"], "'pbs'"),
    ],
)
def test_bad_slurm_options_are_one_line_errors(flags, named, tmp_path, capsys):
    sweep_file = tmp_path / "sweep.py"
    sweep_file.write_text(SWEEP_FILE.format(flags=RESUMABLE_TOY_FLAGS, root=str(tmp_path / "runs")))
    assert cli.main(["sweep", str(sweep_file), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and named in error, error
    assert not (tmp_path / "runs").exists()


def test_slurm_options_become_submitit_parameters():
    assert parse_memory("500M") == pytest.approx(500 / 1024) and parse_memory("2T") == 2048
    options = SlurmOptions(time_min=30, gpus_per_run=1, sbatch=("account=rl",))
    assert options.parameters() == {
        "timeout_min": 30,
        "gpus_per_node": 1,
        "slurm_signal_delay_s": 120,
        "slurm_additional_parameters": {"account": "rl"},
    }
