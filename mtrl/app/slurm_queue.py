"""What Slurm says about a sweep's jobs: the job-id file beside each run's log, and `squeue`'s states.

Kept apart from the launcher so that planning a sweep (which must not start a run that a Slurm job is
already on) needs no Slurm client: with no job-id file nothing here calls Slurm.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from pathlib import Path


def job_file(run_dir: Path) -> Path:
    """Where the launcher notes the Slurm job that works on `run_dir`: `<sweep>/logs/<run>.slurm`."""
    return Path(run_dir).parent / "logs" / f"{Path(run_dir).name}.slurm"


def exit_file(run_dir: Path) -> Path:
    """Where a run's Slurm job notes the `mtrl` exit status it ended with: `<sweep>/logs/<run>.exit`."""
    return Path(run_dir).parent / "logs" / f"{Path(run_dir).name}.exit"


def queue() -> dict[str, str]:
    """Job id -> state (PENDING, RUNNING, COMPLETING, ...) of this user's jobs that Slurm still lists, one
    entry per array task (`123_4`). Empty where there is no Slurm client."""
    if shutil.which("squeue") is None:
        return {}
    listing = subprocess.run(
        ["squeue", "--noheader", "--array", "--user", getpass.getuser(), "--format", "%i|%T"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("|", 1) for line in listing.splitlines() if "|" in line)


def live_job(run_dir: Path) -> str | None:
    """The id of a Slurm job, pending or running, that an earlier launcher submitted for `run_dir`."""
    path = job_file(run_dir)
    if not path.exists():
        return None
    job_id = path.read_text().strip()
    return job_id if job_id in queue() else None
