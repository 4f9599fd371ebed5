"""`mtrl sweep`: run a sweep locally as a bounded pool of `mtrl train` processes, or export it to W&B.

    mtrl sweep FILE [--jobs N] [--retries N] [--dry-run]   run FILE's SWEEP here (resumable: run it again)
    mtrl sweep FILE --wandb-yaml sweep.yaml                write the W&B sweep; then `wandb sweep sweep.yaml`
    mtrl sweep agent FILE --variant=V --seed=S --k=v ...   one W&B run (what `wandb agent` calls)

Every run's config is built and checked (`sweep_grid.expand`) and every run directory inspected
(`sweep_plan`) before the first process starts (`sweep_launcher`); `sweep_wandb` holds the W&B side.
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
from mtrl.app.sweep_wandb import run_agent, write_wandb_yaml


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
    return _local(argv)


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
