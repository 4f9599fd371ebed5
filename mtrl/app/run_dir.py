"""Run directories: created new (never overwritten), held by one process at a time, and what they record
beside the checkpoints (config, spec, package versions)."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import importlib.metadata
import json
import os
import subprocess
from pathlib import Path

from mtrl.app.config import TrainConfig

RUNS_ROOT = Path("runs")


def create_run_dir(config: TrainConfig) -> Path:
    """A new, empty run directory; an existing one is refused, never overwritten."""
    if config.run_dir is not None:
        run_dir = Path(config.run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(
                f"run directory {run_dir} already exists and is not empty; choose another --run-dir "
                "(nothing was changed)"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = RUNS_ROOT / f"{config.preset}-{config.agent_name}-{env_label(config)}-s{config.seed}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    run_dir.mkdir(parents=True)
    return run_dir


@contextlib.contextmanager
def exclusive(run_dir: Path):
    """Hold `run_dir` for this process (an advisory lock the kernel drops when the process dies, however it
    dies): resuming a run that another process is still training would interleave two writers' checkpoints
    and metric lines, so it is refused."""
    with open(run_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise ValueError(
                f"{run_dir} is being trained by {owner}; stop it first (Ctrl-C or SIGTERM checkpoints "
                "it) or wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def package_versions() -> dict[str, str]:
    """Versions that decide whether two runs are comparable."""
    versions = {}
    for name in ("mtrl", "jax", "jaxlib", "flax", "optax", "mujoco", "metaworld", "gymnasium", "minigrid"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    versions["mtrl_commit"] = commit
    return versions


def env_label(config: TrainConfig) -> str:
    return config.env.name + (f"-{config.env.task}" if config.env.task else "")


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
