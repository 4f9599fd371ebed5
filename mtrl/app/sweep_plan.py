"""What each run of a sweep needs, judged from its directory, and the `mtrl` command line that does it.

A run directory is finished when its final checkpoint and `success_table.md` exist (done); one with an older
checkpoint continues with `mtrl train --resume`; one without any checkpoint starts again; one whose pid file
names a live process on it, or whose job file a pending or running Slurm job, is busy. A directory whose
stored config the sweep no longer gives is refused.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from mtrl import checkpoint
from mtrl.app import slurm_queue, wiring
from mtrl.app.config import TrainConfig, load_run_config
from mtrl.app.flags import checked_flags, to_flags
from mtrl.app.resume import check_resumable
from mtrl.app.sweep_grid import RunSpec, Sweep, expand
from mtrl.types import EnvSpec


def load_sweep(path: Path) -> Sweep:
    """The `SWEEP` that the Python file `path` defines."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no sweep file {path}")
    spec = importlib.util.spec_from_file_location(f"mtrl_sweep_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sweep = getattr(module, "SWEEP", None)
    if not isinstance(sweep, Sweep):
        raise ValueError(
            f"{path} must define SWEEP = mtrl.app.sweep_grid.Sweep(...), found {type(sweep).__name__}"
        )
    return sweep


@dataclasses.dataclass
class Job:
    """One run of the sweep and what the launcher does with it."""

    run: RunSpec
    action: str
    """done (finished: skipped), train, resume, evaluate (final checkpoint, no table), busy (running)."""
    status: str = "queued"
    process: subprocess.Popen | None = None
    restarts: int = 0
    returncode: int | None = None
    slurm_job: str | None = None
    """The Slurm job working on the run (the Slurm launcher), and its state as `squeue` last gave it."""
    slurm_state: str = ""

    @property
    def run_dir(self) -> Path:
        return Path(self.run.config.run_dir)


def inspect(run: RunSpec, *, check_busy: bool = True) -> str:
    """What `run` needs, judged from its directory: done, train, resume, evaluate or busy (a local process
    or a pending or running Slurm job is on it; not checked with `check_busy=False`, as that job itself does).

    Refuses, naming the run and the fields, a directory whose stored config the sweep no longer gives.
    """
    run_dir = Path(run.config.run_dir)
    if check_busy and (pid_running(run_dir) is not None or slurm_queue.live_job(run_dir) is not None):
        return "busy"
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "train"
    if not (run_dir / "config.json").exists():
        raise ValueError(f"run {run.name}: {run_dir} exists but is not an mtrl run directory; move it away")
    try:
        check_resumable(load_run_config(run_dir), run.config)
    except ValueError as error:
        raise ValueError(f"run {run.name}: the sweep changed since it ran: {error}") from None
    steps = checkpoint.steps(run_dir)
    if not steps or not (run_dir / "spec.json").exists():
        return "train"  # stopped before its first checkpoint: nothing to continue from
    spec = EnvSpec.from_dict(json.loads((run_dir / "spec.json").read_text()))
    if steps[-1] < wiring.final_step(run.config, spec):
        return "resume"
    return "done" if (run_dir / "success_table.md").exists() else "evaluate"


def command(job: Job) -> list[str]:
    """The `mtrl` command line (as `python -m mtrl.app.cli`) that does what `job.action` says."""
    cli = [sys.executable, "-m", "mtrl.app.cli"]
    if job.action == "train":
        return [*cli, "train", *checked_flags(job.run.config)]
    if job.action == "resume":
        extra = to_flags(resume_config(job), base=load_run_config(job.run_dir))
        return [*cli, "train", "--resume", str(job.run_dir), *extra]
    if job.action == "evaluate":
        return [*cli, "evaluate", str(job.run_dir)]
    raise ValueError(f"no command for action {job.action!r}; valid: train, resume, evaluate")


def resume_config(job: Job) -> TrainConfig:
    """The sweep's config for a run to continue, with the run directory as the run stored it."""
    return dataclasses.replace(job.run.config, run_dir=load_run_config(job.run_dir).run_dir)


def plan(sweep: Sweep) -> list[Job]:
    """Every run with its action and command checked, before anything starts."""
    jobs = [Job(run, inspect(run)) for run in expand(sweep)]
    for job in jobs:
        if job.action in ("train", "resume", "evaluate"):
            command(job)  # builds and round-trips the flags
        job.status = {"done": "done", "busy": "busy"}.get(job.action, "queued")
    return jobs


def pid_running(run_dir: Path) -> int | None:
    """The pid of a live process that an earlier launcher started on `run_dir`, if any."""
    pid_file = run_dir.parent / "logs" / f"{run_dir.name}.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text() or 0)
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and str(run_dir).encode() not in cmdline.read_bytes():
            raise ProcessLookupError
    except (ProcessLookupError, PermissionError, ValueError):
        pid_file.unlink(missing_ok=True)
        return None
    return pid
