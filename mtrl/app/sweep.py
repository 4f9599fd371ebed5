"""`mtrl sweep`: run a sweep locally as a bounded pool of `mtrl train` processes, or export it to W&B.

    mtrl sweep FILE [--jobs N] [--retries N] [--dry-run]   run FILE's SWEEP here (resumable: run it again)
    mtrl sweep FILE --launcher slurm [--partition P --time T --gpus-per-run G --cpus-per-run C --mem M]
                                                         one Slurm job per run (resumable the same way)
    mtrl sweep FILE --wandb-yaml sweep.yaml                write the W&B sweep; then `wandb sweep sweep.yaml`
    mtrl sweep agent FILE --variant=V --seed=S --k=v ...   one W&B run (what `wandb agent` calls)

Every run's config is built and checked (`sweep_grid.expand`) and every run directory inspected
(`sweep_plan`) before the first process starts (`sweep_launcher`, or `sweep_slurm` for Slurm jobs);
`sweep_wandb` holds the W&B side.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from mtrl.app.errors import run_command
from mtrl.app.sweep_launcher import launch
from mtrl.app.sweep_plan import command, load_sweep, plan
from mtrl.app.sweep_slurm import SlurmOptions, check_sbatch_option, launch_slurm, parse_memory, parse_time
from mtrl.app.sweep_wandb import run_agent, write_wandb_yaml

LAUNCHERS = ("local", "slurm")
SLURM_FLAGS = ("partition", "time", "gpus_per_run", "cpus_per_run", "mem", "sbatch", "poll_seconds")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_command(
        lambda: _command(argv), on_interrupt=lambda _: "run the same command again to continue"
    )


def _command(argv: list[str]) -> int:
    if argv and argv[0] == "agent":
        if len(argv) < 2:
            raise ValueError("usage: mtrl sweep agent FILE --variant=V --seed=S [--field=value ...]")
        run_agent(Path(argv[1]), argv[2:])
        return 0
    return _launch(argv)


def _launch(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mtrl sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "file", type=Path, help="a Python file that defines SWEEP = mtrl.app.sweep_grid.Sweep(...)"
    )
    parser.add_argument(
        "--launcher", default="local", help="local: processes on this machine; slurm: one Slurm job per run"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="runs at a time (default: local, one per core; slurm, all)"
    )
    parser.add_argument(
        "--retries", type=int, default=None, help="local: continue a run killed from outside this often (1)"
    )
    parser.add_argument("--dry-run", action="store_true", help="check every run and list them; start nothing")
    parser.add_argument("--wandb-yaml", type=Path, default=None, help="write the W&B sweep here instead")
    slurm = parser.add_argument_group("with --launcher slurm")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument(
        "--time",
        default=None,
        help="time limit per job: MINUTES, H:MM:SS or D-HH:MM (default 4:00:00); a run that needs longer "
        "checkpoints and continues in its requeued job",
    )
    slurm.add_argument("--gpus-per-run", type=int, default=None)
    slurm.add_argument("--cpus-per-run", type=int, default=None)
    slurm.add_argument("--mem", default=None, help="memory per run, with a unit: 32G, 500M")
    slurm.add_argument(
        "--sbatch", action="append", default=None, metavar="KEY=VALUE", help="any other #SBATCH option"
    )
    slurm.add_argument("--poll-seconds", type=float, default=None, help="how often to ask squeue (5)")
    args = parser.parse_args(argv)
    slurm_options = _slurm_options(args)
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
    if slurm_options is None:
        jobs = launch(
            sweep, jobs=args.jobs, retries=1 if args.retries is None else args.retries, console=console
        )
    else:
        jobs = launch_slurm(sweep, slurm_options, console=console, poll_s=args.poll_seconds or 5.0)
    if any(j.status == "failed" for j in jobs):
        return 1
    return 130 if any(j.status in ("stopped", "queued", "running") for j in jobs) else 0


def _slurm_options(args: argparse.Namespace) -> SlurmOptions | None:
    """The Slurm launcher's options, checked before anything is created; None for the local launcher."""
    if args.launcher not in LAUNCHERS:
        raise ValueError(
            f"--launcher {args.launcher!r} is not a launcher; valid launchers: {', '.join(LAUNCHERS)}"
        )
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    given = [name for name in SLURM_FLAGS if getattr(args, name) is not None]
    if args.launcher == "local":
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} is for --launcher slurm")
        return None
    if args.retries is not None:
        raise ValueError(
            "--retries is for --launcher local: on Slurm a stopped run's job is requeued, and launching "
            "the sweep again continues the rest"
        )
    return SlurmOptions(
        time_min=parse_time(args.time) if args.time is not None else SlurmOptions.time_min,
        partition=args.partition,
        gpus_per_run=args.gpus_per_run,
        cpus_per_run=args.cpus_per_run,
        mem_gb=parse_memory(args.mem) if args.mem is not None else None,
        parallel=args.jobs,
        sbatch=tuple(check_sbatch_option(option) for option in args.sbatch or ()),
    )


if __name__ == "__main__":
    sys.exit(main())
