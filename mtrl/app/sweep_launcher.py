"""The local sweep launcher: a bounded pool of `mtrl train` processes, one per unfinished run.

Processes start in new sessions with their output in `<sweep>/logs/<run>.log` and their pid in
`<sweep>/logs/<run>.pid`. Ctrl-C reaches the launcher, which sends SIGTERM to every run (each writes a
checkpoint and stops; a second Ctrl-C sends SIGINT) and returns; running the sweep again continues them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from mtrl import checkpoint
from mtrl.app.signals import StopSignals
from mtrl.app.sweep_grid import Sweep
from mtrl.app.sweep_plan import Job, command, plan
from mtrl.app.sweep_progress import SweepProgress


def launch(
    sweep: Sweep,
    *,
    jobs: int | None = None,
    retries: int = 1,
    console: Console | None = None,
    poll_s: float = 0.5,
    make_command: Callable[[Job], list[str]] = command,
) -> list[Job]:
    """Run every unfinished run of `sweep`, at most `jobs` processes at a time (default: one per core).

    A run killed by a signal from outside (the OOM killer, say) is continued from its checkpoint up to
    `retries` times. Returns the jobs with their final status: done, failed, stopped, busy.
    `make_command` gives each job's command line (the `mtrl` one; tests substitute their own).
    """
    console = console or Console()
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    limit = jobs or default_jobs()
    planned = plan(sweep)
    logs = sweep.directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    write_manifest(sweep, planned)
    skipped = [j.run.name for j in planned if j.action == "done"]
    if skipped:
        console.print(f"skipping {len(skipped)} finished run(s): {', '.join(skipped)}")
    stop, sent = StopSignals(), {}
    with stop, SweepProgress(planned, console) as progress:
        while True:
            for job in planned:
                if job.process is not None and job.process.poll() is not None:
                    _finished(job, retries, stop.requested(), console)
            running = [j for j in planned if j.status == "running"]
            if stop.requested():
                for job in running:
                    _forward(stop, job.process, sent)
            else:
                for job in [j for j in planned if j.status == "queued"][: limit - len(running)]:
                    _start(job, make_command(job), logs, console)
            progress.refresh()
            if not any(j.status in ("running", "queued") for j in planned):
                break
            if stop.requested() and not running:
                break
            time.sleep(poll_s)
    for job in planned:
        if job.status == "queued":
            job.status = "stopped"
    return planned


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _start(job: Job, args: list[str], logs: Path, console: Console) -> None:
    if job.action == "train" and job.run_dir.exists():
        shutil.rmtree(job.run_dir)  # a run with no checkpoint yet: nothing in it to continue from
    log = (logs / f"{job.run.name}.log").open("a")
    log.write(f"$ {' '.join(args)}\n")
    log.flush()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    job.process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    log.close()
    (logs / f"{job.run.name}.pid").write_text(str(job.process.pid))
    job.status = "running"
    console.print(f"{job.action:<8} {job.run.name} (pid {job.process.pid}, log {logs / job.run.name}.log)")


def _finished(job: Job, retries: int, stopping: bool, console: Console) -> None:
    code = job.returncode = job.process.returncode
    job.process = None
    (job.run_dir.parent / "logs" / f"{job.run.name}.pid").unlink(missing_ok=True)
    if code == 0:
        job.status = "done"
    elif code == 130 or stopping:
        job.status = "stopped"
    elif code < 0 and job.restarts < retries:  # killed from outside: continue from its checkpoint
        job.restarts += 1
        job.action = "resume" if checkpoint.steps(job.run_dir) else "train"
        job.status = "queued"
    else:
        job.status = "failed"
    console.print(f"{job.status:<8} {job.run.name} (exit status {code})")


def write_manifest(sweep: Sweep, jobs: list[Job]) -> None:
    """`<sweep>/sweep.json`: the sweep's runs, their variants, overrides and seeds."""
    manifest = {
        "name": sweep.name,
        "runs": [
            {"name": j.run.name, "variant": j.run.variant, "overrides": j.run.overrides, "seeds": j.run.seeds}
            for j in jobs
        ],
    }
    (sweep.directory / "sweep.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def _forward(stop: StopSignals, process: subprocess.Popen, sent: dict[int, int]) -> None:
    """Pass the user's stop on to a run: SIGTERM after the first signal, SIGINT after the second."""
    wanted = signal.SIGTERM if stop.count == 1 else signal.SIGINT
    if sent.get(process.pid) != wanted:
        sent[process.pid] = wanted
        process.send_signal(wanted)
