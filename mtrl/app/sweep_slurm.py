"""`mtrl sweep FILE --launcher slurm`: one Slurm job per unfinished run, submitted with submitit as one array.

A job runs its run's next step (train, resume or evaluate, judged from the run directory when the job
starts) in the job's own Python process, with its output in `<sweep>/logs/<run>.log` as locally, and
Slurm's signals stop it as SIGTERM does locally, with a checkpoint:
- preemption and `scontrol requeue` send SIGTERM: the run checkpoints, Slurm requeues the job, and the job
  resumes the run when it starts again;
- near the time limit submitit has Slurm send USR2: the run checkpoints and the job requeues itself;
- `scancel` sends SIGTERM: the run checkpoints and stays stopped until the sweep is launched again.
The launcher watches `squeue` in the live table until every job has left the queue. Ctrl-C stops watching
and leaves the jobs to Slurm; launching again watches them (runs with a pending or running job are busy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import submitit
from rich.console import Console

from mtrl.app import slurm_queue
from mtrl.app.errors import run_command
from mtrl.app.evaluate import evaluate_run
from mtrl.app.resume import resume
from mtrl.app.run import train
from mtrl.app.sweep_grid import RunSpec, Sweep
from mtrl.app.sweep_launcher import write_manifest
from mtrl.app.sweep_plan import Job, command, inspect, plan, resume_config
from mtrl.app.sweep_progress import SweepProgress

TIME_LIMIT_SIGNAL = signal.SIGUSR2  # what submitit asks Slurm to send `warning_s` before the time limit
CONTINUES = "its requeued job, or the sweep launched again, continues it"


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """What each run's job asks Slurm for. `None` leaves a resource to the cluster's default."""

    time_min: int = 240
    """Time limit per job, in minutes. A run that needs longer continues in a requeued job."""
    partition: str | None = None
    gpus_per_run: int | None = None
    cpus_per_run: int | None = None
    mem_gb: float | None = None
    parallel: int | None = None
    """At most this many of the sweep's jobs run at once (the array's `%N`)."""
    sbatch: tuple[str, ...] = ()
    """Further `#SBATCH` options as KEY=VALUE (e.g. account=rl, qos=high, constraint=a100)."""
    warning_s: int = 120
    """How long before the time limit the run is told to checkpoint and stop."""

    def __post_init__(self) -> None:
        if self.time_min * 60 < 2 * self.warning_s:
            raise ValueError(
                f"--time {self.time_min} (minutes) leaves too little before the checkpoint warning, which "
                f"comes {self.warning_s} s before the limit; give at least {-(-self.warning_s // 30)} minutes"
            )

    def parameters(self) -> dict[str, Any]:
        """The options as submitit's executor parameters."""
        given = {
            "timeout_min": self.time_min,
            "slurm_partition": self.partition,
            "gpus_per_node": self.gpus_per_run,
            "cpus_per_task": self.cpus_per_run,
            "mem_gb": self.mem_gb,
            "slurm_array_parallelism": self.parallel,
            "slurm_signal_delay_s": self.warning_s,
        }
        parameters = {key: value for key, value in given.items() if value is not None}
        extra = dict(option.split("=", 1) for option in self.sbatch)
        if extra:
            parameters["slurm_additional_parameters"] = extra
        return parameters


def parse_time(text: str) -> int:
    """Slurm's time formats (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) -> whole minutes (seconds round up)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if match is None:
        raise ValueError(
            f"--time {text!r} is not a Slurm time; valid forms: MINUTES, H:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS"
        )
    days, first, second, third = (int(g) if g is not None else None for g in match.groups())
    if days is not None:  # D-H[:M[:S]]
        seconds = days * 86400 + first * 3600 + (second or 0) * 60 + (third or 0)
    elif third is not None:  # H:M:S
        seconds = first * 3600 + second * 60 + third
    else:  # M[:S]
        seconds = first * 60 + (second or 0)
    if seconds <= 0:
        raise ValueError(f"--time {text!r} must be longer than zero")
    return -(-seconds // 60)


def parse_memory(text: str) -> float:
    """`16G`, `500M`, `1T` -> gigabytes (Slurm reads a bare number as megabytes, so a unit is required)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([MGT])B?", text.strip().upper())
    if match is None:
        raise ValueError(f"--mem {text!r} needs a number and a unit; valid units: M, G, T (e.g. 16G)")
    return float(match.group(1)) * {"M": 1 / 1024, "G": 1.0, "T": 1024.0}[match.group(2)]


def check_sbatch_option(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]*=.+", text):
        raise ValueError(f"--sbatch {text!r} must be KEY=VALUE, e.g. account=rl or constraint=a100")
    return text


def launch_slurm(
    sweep: Sweep, options: SlurmOptions, *, console: Console | None = None, poll_s: float = 5.0
) -> list[Job]:
    """Submit a job for every unfinished run of `sweep` and watch them until they leave Slurm's queue.

    Returns the jobs: done, failed, stopped (the run checkpointed; launch again to continue), busy (a
    local process is on it), or still queued/running when watching was stopped with Ctrl-C.
    """
    console = console or Console()
    planned = plan(sweep)
    (sweep.directory / "logs").mkdir(parents=True, exist_ok=True)
    write_manifest(sweep, planned)
    skipped = [j.run.name for j in planned if j.action == "done"]
    if skipped:
        console.print(f"skipping {len(skipped)} finished run(s): {', '.join(skipped)}")
    for job in planned:
        if job.action == "busy":
            job.slurm_job = slurm_queue.live_job(job.run_dir)  # None: a local process is on it
            if job.slurm_job is not None:
                job.status = "queued"
    submit([j for j in planned if j.status == "queued" and j.slurm_job is None], sweep, options, console)
    watch(planned, console, poll_s)
    return planned


def submit(jobs: list[Job], sweep: Sweep, options: SlurmOptions, console: Console) -> None:
    """Submit `jobs` as one job array; each job's id goes to the job file beside its run's log."""
    if not jobs:
        return
    executor = submitit.AutoExecutor(folder=sweep.directory / "slurm", cluster="slurm")
    executor.update_parameters(name=sweep.name, **options.parameters())
    with executor.batch():
        handles = [executor.submit(SlurmRun(job.run, os.getcwd())) for job in jobs]
    for job, handle in zip(jobs, handles, strict=True):
        job.slurm_job = handle.job_id
        slurm_queue.exit_file(job.run_dir).unlink(missing_ok=True)
        slurm_queue.job_file(job.run_dir).write_text(handle.job_id + "\n")
        log = sweep.directory / "logs" / f"{job.run.name}.log"
        console.print(f"{job.action:<8} {job.run.name} (slurm job {handle.job_id}, log {log})")


def watch(jobs: list[Job], console: Console, poll_s: float) -> None:
    """Follow the jobs' Slurm states in the live table until none is queued or running (or Ctrl-C)."""
    with SweepProgress(jobs, console) as progress:
        try:
            while True:
                states = slurm_queue.queue()
                for job in jobs:
                    if job.slurm_job is not None and job.status in ("queued", "running"):
                        _follow(job, states.get(job.slurm_job))
                progress.refresh()
                if not any(j.status in ("queued", "running") for j in jobs):
                    return
                time.sleep(poll_s)
        except KeyboardInterrupt:
            console.print(
                "stopped watching: the jobs stay with Slurm (scancel stops them, each run with a "
                "checkpoint); run the same command again to watch them"
            )


def _follow(job: Job, state: str | None) -> None:
    if state is not None:
        job.slurm_state = state
        job.status = "running" if state in ("RUNNING", "COMPLETING") else "queued"
        return
    job.slurm_state = "left the queue"
    if inspect(job.run, check_busy=False) == "done":
        job.status = "done"
        return
    exit_file = slurm_queue.exit_file(job.run_dir)
    job.returncode = int(exit_file.read_text()) if exit_file.exists() else None
    job.status = "failed" if job.returncode not in (None, 130) else "stopped"


@dataclasses.dataclass(frozen=True)
class SlurmRun:
    """What a run's Slurm job calls: the run's next step, in this process (submitit pickles this object)."""

    run: RunSpec
    workdir: str
    """The directory the sweep was launched from: run directories are relative to it."""

    def __call__(self) -> int:
        os.chdir(self.workdir)
        run_dir = Path(self.run.config.run_dir)
        job = Job(self.run, inspect(self.run, check_busy=False))
        status = 0
        if job.action != "done":
            log = run_dir.parent / "logs" / f"{self.run.name}.log"
            with _output_to(log), _TimeLimit() as limit:
                print(f"$ mtrl {' '.join(command(job)[3:])}  # slurm job {_job_id()}", flush=True)
                try:
                    status = run_command(lambda: _next_step(job), on_interrupt=lambda _: CONTINUES)
                except Exception:
                    slurm_queue.exit_file(run_dir).write_text("1\n")  # a failure, not a stop
                    raise
            if status == 130 and limit.reached:
                subprocess.run(["scontrol", "requeue", _job_id()], check=True)  # continues where it stopped
        slurm_queue.exit_file(run_dir).write_text(f"{status}\n")
        if status not in (0, 130):
            raise RuntimeError(f"mtrl {job.action} of {run_dir} ended with exit status {status}; see its log")
        return status


def _next_step(job: Job) -> None:
    if job.action == "train":
        train(job.run.config)
    elif job.action == "resume":
        resume(job.run_dir, resume_config(job))
    else:
        evaluate_run(job.run_dir)


class _TimeLimit:
    """While active, the time-limit signal stops the run as SIGTERM does, and is remembered."""

    def __init__(self):
        self.reached = False
        self._previous = None

    def _handle(self, signum: int, frame) -> None:
        self.reached = True
        on_terminate = signal.getsignal(signal.SIGTERM)  # the run's stop handler while it trains
        if callable(on_terminate):
            on_terminate(signal.SIGTERM, frame)

    def __enter__(self) -> _TimeLimit:
        self._previous = signal.signal(TIME_LIMIT_SIGNAL, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(TIME_LIMIT_SIGNAL, self._previous)


def _job_id() -> str:
    return submitit.JobEnvironment().job_id


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (Python's and native code's) to the end of `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
