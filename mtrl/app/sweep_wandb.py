"""A sweep as a W&B grid sweep: the YAML `wandb sweep` reads, and the entry point its agents call.

    mtrl sweep FILE --wandb-yaml sweep.yaml                write the W&B sweep; then `wandb sweep sweep.yaml`
    mtrl sweep agent FILE --variant=V --seed=S --k=v ...   one W&B run (what `wandb agent` calls)

A W&B run has the name and run directory the local launcher gives the same variant, grid point and seed, so
both launchers can share a sweep directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from mtrl.app.evaluate import evaluate_run
from mtrl.app.flags import field_name
from mtrl.app.resume import resume
from mtrl.app.run import train
from mtrl.app.sweep_grid import Sweep, build_run, expand
from mtrl.app.sweep_plan import inspect, load_sweep

WANDB_COMMAND = ("${env}", "${interpreter}", "-m", "mtrl.app.sweep", "agent", "${program}", "${args}")


def wandb_sweep_config(sweep: Sweep, program: str) -> dict[str, Any]:
    """The same sweep as a W&B grid sweep (dict for YAML): one W&B run per variant × grid point × seed.

    `program` is the sweep file as the agents' machines see it (relative to where `wandb agent` runs);
    each agent calls `python -m mtrl.app.sweep agent <program> --variant=... --seed=... --<field>=...`.
    Runs log online (`wandb.mode` = online), since an agent exists to report to the sweep.
    """
    expand(sweep)  # refuse a sweep that cannot run before it reaches W&B
    base = sweep.base_config()
    parameters: dict[str, Any] = {}
    if list(sweep.variants) != [""]:
        parameters["variant"] = {"values": list(sweep.variants)}
    for key, values in sweep.grid.items():
        parameters[field_name(key)] = {"values": [_plain(v, key) for v in values]}
    parameters["seed"] = {"values": sorted(sweep.seeds)}
    parameters["wandb.mode"] = {"value": "online"}
    config: dict[str, Any] = {
        "name": sweep.name,
        "program": program,
        "method": "grid",
        "metric": {"name": "eval/success", "goal": "maximize"},
        "parameters": parameters,
        "command": list(WANDB_COMMAND),
        "project": base.wandb.project,
    }
    if base.wandb.entity:
        config["entity"] = base.wandb.entity
    return config


def _plain(value: Any, key: str) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v, key) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    raise ValueError(
        f"grid[{key!r}] holds {value!r}, which W&B cannot pass on a command line; "
        "give agents by name and other values as numbers, strings or lists"
    )


def parse_agent_args(args: Sequence[str]) -> tuple[str, int, dict[str, str]]:
    """(variant, seed, overrides) from W&B's `--key=value` arguments (`${args}` in the sweep's command)."""
    values: dict[str, str] = {}
    for arg in args:
        if not arg.startswith("--") or "=" not in arg:
            raise ValueError(f"expected --key=value (as W&B passes parameters), got {arg!r}")
        key, _, value = arg[2:].partition("=")
        values[field_name(key)] = value
    variant = values.pop("variant", "")
    if "seed" not in values:
        raise ValueError("missing --seed=N (the W&B sweep's seed parameter)")
    seed = values.pop("seed")
    if not seed.isdigit():
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")
    return variant, int(seed), values


def write_wandb_yaml(sweep: Sweep, program: str, path: Path) -> dict[str, Any]:
    config = wandb_sweep_config(sweep, program)
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def run_agent(path: Path, args: list[str], console: Console | None = None):
    """Train the one run that W&B's arguments pick (continuing it if this machine has part of it)."""
    variant, seed, overrides = parse_agent_args(args)
    spec = build_run(load_sweep(path), variant, overrides, seed)
    action = inspect(spec)
    console = console or Console()
    console.print(f"W&B sweep run {spec.name}: {action}")
    if action == "train":
        if spec.config.run_dir.exists():
            shutil.rmtree(spec.config.run_dir)
        return train(spec.config, console)
    if action == "resume":
        return resume(spec.config.run_dir, spec.config, console)
    if action == "evaluate":
        return evaluate_run(spec.config.run_dir, console)
    return None  # done, or running in another process
