"""Run a sweep: locally as a bounded pool of `mtrl train` processes, or as a W&B grid sweep on many machines.

    mtrl sweep FILE [--jobs N] [--retries N] [--dry-run]   run FILE's SWEEP here (resumable: run it again)
    mtrl sweep FILE --wandb-yaml sweep.yaml                write the W&B sweep; then `wandb sweep sweep.yaml`
    mtrl sweep agent FILE --variant=V --seed=S --k=v ...   one W&B run (what `wandb agent` calls)

Every run's config is built and checked (`sweep_grid.expand`) and every run directory inspected before the
first process starts. A run directory is finished when its final checkpoint and `success_table.md` exist
(skipped); one with an older checkpoint continues with `mtrl train --resume`; one without any checkpoint
starts again. Processes start in new sessions: Ctrl-C reaches the launcher, which sends SIGTERM to every
run (each writes a checkpoint and stops) and exits with 130; running the sweep again continues them.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from mtrl import checkpoint, training
from mtrl.app.config import TrainConfig, dotted_fields, load_run_config, to_json
from mtrl.app.presets import PRESETS, get_preset
from mtrl.app.sweep_grid import RunSpec, Sweep, build_run, expand, parse_agent_args, wandb_sweep_config
from mtrl.app.sweep_progress import SweepProgress
from mtrl.types import EnvSpec

FLAGS_BASE = "quickstart"  # flags of a config from no registered preset are given relative to this one


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


# ---- `mtrl train` command lines for a config ----------------------------------------------------------


def train_flags(config: TrainConfig, base: TrainConfig | None = None) -> list[str]:
    """Flags that make `mtrl train` build `config` (`mtrl train --resume` if `base` is the stored config)."""
    flags: list[str] = []
    if base is None:
        preset = config.preset if config.preset in PRESETS else FLAGS_BASE
        flags, base = ["--preset", preset], get_preset(preset)
        if type(base.agent) is not type(config.agent):
            flags += ["--agent", config.agent_name]
            base = dataclasses.replace(base, agent=type(config.agent)())
    old, new = dotted_fields(to_json(base)), dotted_fields(to_json(config))
    for key, value in new.items():
        if key in ("preset", "agent_name") or old.get(key) == value:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            head, _, leaf = flag.rpartition(".")
            flags.append(flag if value else f"{head}.no-{leaf}" if head else f"--no-{leaf[2:]}")
        elif isinstance(value, list | tuple):
            flags += [flag, *map(str, value)]
        else:
            flags += [
                flag,
                "None" if value is None else repr(value) if isinstance(value, float) else str(value),
            ]
    return flags


def checked_train_flags(config: TrainConfig) -> list[str]:
    """`train_flags`, verified: the CLI's own parser must give back `config` exactly (its preset aside)."""
    from mtrl.app.cli import parse_train_args

    flags = train_flags(config)
    try:
        parsed = parse_train_args(flags)
    except SystemExit:
        raise ValueError(f"run {config.run_dir}: mtrl train cannot parse {' '.join(flags)}") from None
    if config.preset not in PRESETS:
        parsed = dataclasses.replace(parsed, preset=config.preset)
    if parsed != config:
        diff = [
            k for k, v in dotted_fields(to_json(config)).items() if dotted_fields(to_json(parsed)).get(k) != v
        ]
        raise ValueError(f"run {config.run_dir}: flags {' '.join(flags)} do not reproduce fields {diff}")
    return flags


# ---- what each run needs --------------------------------------------------------------------------------


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

    @property
    def run_dir(self) -> Path:
        return Path(self.run.config.run_dir)


def final_step(config: TrainConfig, spec: EnvSpec) -> int:
    """The step of a run's last checkpoint (env steps over all tasks, as checkpoints are numbered)."""
    per_task = (
        training.num_iterations(config.loop, spec) * config.loop.steps_per_iteration * spec.envs_per_task
    )
    return per_task * spec.num_tasks


def inspect(run: RunSpec) -> str:
    """What `run` needs, judged from its directory: done, train, resume, evaluate or busy.

    Refuses, naming the run and the fields, a directory whose stored config the sweep no longer gives.
    """
    from mtrl.app.run import check_resumable

    run_dir = Path(run.config.run_dir)
    if _pid_running(run_dir) is not None:
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
    if steps[-1] < final_step(run.config, spec):
        return "resume"
    return "done" if (run_dir / "success_table.md").exists() else "evaluate"


def command(job: Job) -> list[str]:
    """The `mtrl` command line (as `python -m mtrl.app.cli`) that does what `job.action` says."""
    cli = [sys.executable, "-m", "mtrl.app.cli"]
    if job.action == "train":
        return [*cli, "train", *checked_train_flags(job.run.config)]
    if job.action == "resume":
        stored = load_run_config(job.run_dir)
        extra = train_flags(dataclasses.replace(job.run.config, run_dir=stored.run_dir), base=stored)
        return [*cli, "train", "--resume", str(job.run_dir), *extra]
    if job.action == "evaluate":
        return [*cli, "evaluate", str(job.run_dir)]
    raise ValueError(f"no command for action {job.action!r}; valid: train, resume, evaluate")


def plan(sweep: Sweep) -> list[Job]:
    """Every run with its action and command checked, before anything starts."""
    jobs = [Job(run, inspect(run)) for run in expand(sweep)]
    for job in jobs:
        if job.action in ("train", "resume", "evaluate"):
            command(job)  # builds and round-trips the flags
        job.status = {"done": "done", "busy": "busy"}.get(job.action, "queued")
    return jobs


# ---- the local launcher ---------------------------------------------------------------------------------


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
    manifest = json.dumps(_manifest(sweep, planned), indent=2, default=str)
    (sweep.directory / "sweep.json").write_text(manifest + "\n")
    skipped = [j.run.name for j in planned if j.action == "done"]
    if skipped:
        console.print(f"skipping {len(skipped)} finished run(s): {', '.join(skipped)}")
    stop = _StopRequest()
    with stop, SweepProgress(planned, console) as progress:
        while True:
            for job in planned:
                if job.process is not None and job.process.poll() is not None:
                    _finished(job, retries, stop.requested, console)
            running = [j for j in planned if j.status == "running"]
            if stop.requested:
                for job in running:
                    stop.forward(job.process)
            else:
                for job in [j for j in planned if j.status == "queued"][: limit - len(running)]:
                    _start(job, make_command(job), logs, console)
            progress.refresh()
            if not any(j.status in ("running", "queued") for j in planned):
                break
            if stop.requested and not running:
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


def _pid_running(run_dir: Path) -> int | None:
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


def _manifest(sweep: Sweep, jobs: list[Job]) -> dict[str, Any]:
    return {
        "name": sweep.name,
        "runs": [
            {"name": j.run.name, "variant": j.run.variant, "overrides": j.run.overrides, "seeds": j.run.seeds}
            for j in jobs
        ],
    }


class _StopRequest:
    """SIGINT/SIGTERM: forward SIGTERM to the runs (they checkpoint and stop); a second signal: SIGINT."""

    def __init__(self):
        self.requested = 0
        self._sent: dict[int, int] = {}
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        self.requested += 1

    def forward(self, process: subprocess.Popen) -> None:
        wanted = signal.SIGTERM if self.requested == 1 else signal.SIGINT
        if self._sent.get(process.pid) != wanted:
            self._sent[process.pid] = wanted
            process.send_signal(wanted)

    def __enter__(self) -> _StopRequest:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


# ---- W&B ------------------------------------------------------------------------------------------------


def write_wandb_yaml(sweep: Sweep, program: str, path: Path) -> dict[str, Any]:
    import yaml

    config = wandb_sweep_config(sweep, program)
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def run_agent(path: Path, args: list[str], console: Console | None = None):
    """Train the one run that W&B's arguments pick (continuing it if this machine has part of it)."""
    from mtrl.app import run

    variant, seed, overrides = parse_agent_args(args)
    spec = build_run(load_sweep(path), variant, overrides, seed)
    action = inspect(spec)
    console = console or Console()
    console.print(f"W&B sweep run {spec.name}: {action}")
    if action == "train":
        if spec.config.run_dir.exists():
            shutil.rmtree(spec.config.run_dir)
        return run.train(spec.config, console)
    if action == "resume":
        return run.resume(spec.config.run_dir, spec.config, console)
    if action == "evaluate":
        return run.evaluate_run(spec.config.run_dir, console)
    return None  # done, or running in another process


# ---- command line ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "agent":
            if len(argv) < 2:
                raise ValueError("usage: mtrl sweep agent FILE --variant=V --seed=S [--field=value ...]")
            run_agent(Path(argv[1]), argv[2:])
            return 0
        return _local(argv)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"mtrl: error: {error}", file=sys.stderr)
        return 2
    except training.Interrupted as stopped:
        print(f"mtrl: {stopped}; run the same command again to continue", file=sys.stderr)
        return 130
    except (training.Diverged, checkpoint.CheckpointError) as error:
        print(f"mtrl: error: {error}", file=sys.stderr)
        return 1


def _local(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mtrl sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "file", type=Path, help="a Python file that defines SWEEP = mtrl.app.sweep_grid.Sweep(...)"
    )
    parser.add_argument("--jobs", type=int, default=None, help="processes at a time (default: one per core)")
    parser.add_argument(
        "--retries", type=int, default=1, help="continue a run killed from outside this often"
    )
    parser.add_argument("--dry-run", action="store_true", help="check every run and list them; start nothing")
    parser.add_argument("--wandb-yaml", type=Path, default=None, help="write the W&B sweep here instead")
    args = parser.parse_args(argv)
    sweep = load_sweep(args.file)
    console = Console()
    if args.wandb_yaml is not None:
        program = Path(os.path.relpath(args.file.absolute()))  # as machines with the same checkout see it
        write_wandb_yaml(sweep, str(program), args.wandb_yaml)
        console.print(
            f"wrote {args.wandb_yaml}; next: wandb sweep {args.wandb_yaml}, then on every machine "
            "wandb agent ENTITY/PROJECT/SWEEP_ID"
        )
        return 0
    if args.dry_run:
        for job in plan(sweep):
            line = "" if job.action in ("done", "busy") else "mtrl " + " ".join(command(job)[3:])
            console.print(f"[bold]{job.run.name}[/bold] {job.action} {line}", soft_wrap=True)
        return 0
    jobs = launch(sweep, jobs=args.jobs, retries=args.retries, console=console)
    if any(j.status == "failed" for j in jobs):
        return 1
    return 130 if any(j.status == "stopped" for j in jobs) else 0


if __name__ == "__main__":
    sys.exit(main())
