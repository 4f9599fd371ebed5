"""Sweep definitions: a base config × named variants × a grid of overrides × seeds, expanded into typed runs.

A sweep file in `experiments/sweeps/` builds one `Sweep` and names it `SWEEP`; `mtrl sweep FILE` runs it on
this machine (`mtrl.app.sweep`) and `mtrl sweep FILE --wandb-yaml` exports it as a W&B grid sweep whose agents
call `mtrl sweep agent FILE --key=value ...`. Everything here is pure: no files are touched and no process is
started, so every run's config is built and checked before any of them begins.

Overrides use the CLI's dotted field names (`"agent.num_experts"`, `"loop.batch_per_task"`; dashes or
underscores), plus two swaps applied first: `"preset"` (start from another preset) and `"agent"` (an agent
name for that agent's default `Config`, or a `Config` instance).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtrl import envs
from mtrl.app import wiring
from mtrl.app.config import TrainConfig, agent_name_of
from mtrl.app.flags import apply_overrides, field_name
from mtrl.app.presets import get_preset

SWAPS = ("preset", "agent")  # applied before any field, in this order
NOT_SWEPT = ("seed", "num_seeds", "run_dir")  # the sweep itself sets these
_SAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sweep:
    """What to train: every variant × every grid point × every seed, each in `root/name/<run name>`."""

    name: str
    """Sweep name: its directory under `root` and the default W&B group of its runs."""
    base: TrainConfig | str = "quickstart"
    """The config every run starts from, or a preset name."""
    variants: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=lambda: {"": {}})
    """Named override sets compared against each other, e.g. {"moore": {"preset": "mt10-moore"}, ...}."""
    grid: Mapping[str, Sequence[Any]] = dataclasses.field(default_factory=dict)
    """Dotted field -> values; every combination is run (the Cartesian product, in the given order)."""
    seeds: Sequence[int] = (0,)
    root: Path = Path("runs/sweeps")

    def __post_init__(self) -> None:
        _check_label(self.name, "sweep name")
        if not self.variants:
            raise ValueError(f"sweep {self.name}: variants is empty; give at least one (e.g. {{'': {{}}}})")
        for variant in self.variants:
            if variant:
                _check_label(variant, f"sweep {self.name}: variant name")
        for key, values in self.grid.items():
            if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
                raise ValueError(f"sweep {self.name}: grid[{key!r}] must be a non-empty list, got {values!r}")
        for key in [*self.grid, *(k for v in self.variants.values() for k in v)]:
            if field_name(key) in NOT_SWEPT:
                raise ValueError(f"sweep {self.name}: {key!r} cannot be swept; set seeds= instead")
        seeds = list(self.seeds)
        if not seeds or any(type(s) is not int or s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"sweep {self.name}: seeds must be distinct non-negative ints, got {seeds}")

    @property
    def directory(self) -> Path:
        return Path(self.root) / self.name

    def base_config(self) -> TrainConfig:
        return get_preset(self.base) if isinstance(self.base, str) else self.base


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One planned run: its deterministic name, its complete validated config (run_dir set) and origin."""

    name: str
    config: TrainConfig
    variant: str
    overrides: dict[str, Any]
    """The grid point (dotted name -> value) this run trains."""
    seeds: tuple[int, ...]


def expand(sweep: Sweep) -> list[RunSpec]:
    """Every run of `sweep`, built and validated; raises ValueError naming the first bad run and field.

    Seeds of one config share one run (and one vmapped program) when its env is pure JAX; otherwise each
    seed is its own run. (Meta-World's native backend can vmap seeds too, but a sweep keeps them in
    processes of their own: they then use every core, and the names of existing sweeps' runs stay valid.)
    Run names are deterministic, so a relaunch finds the runs it started before.
    """
    base = sweep.base_config()
    runs = []
    for variant in sweep.variants:
        for values in itertools.product(*sweep.grid.values()):
            point = dict(zip(sweep.grid, values, strict=True))
            config, label = _build(sweep, base, variant, point)
            for block in seed_blocks(sweep.seeds, wiring.backend_of(config) == "jax"):
                name = _safe("-".join([label] * bool(label) + [seeds_label(block)]))
                run_config = dataclasses.replace(
                    config, seed=block[0], num_seeds=len(block), run_dir=sweep.directory / name
                )
                runs.append(RunSpec(name, run_config, variant, point, block))
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"sweep {sweep.name}: two runs would both be named {duplicate!r}; rename a variant")
    return runs


def build_run(sweep: Sweep, variant: str, overrides: Mapping[str, Any], seed: int) -> RunSpec:
    """The single-seed run of `variant` with `overrides` (values may be strings, as W&B passes them).

    Its name is the one the local launcher gives the same variant, grid point and seed.
    """
    if variant not in sweep.variants:
        raise ValueError(f"unknown variant {variant!r}; valid variants: {', '.join(sweep.variants)}")
    config, label = _build(sweep, sweep.base_config(), variant, dict(overrides))
    name = _safe("-".join([label] * bool(label) + [seeds_label((seed,))]))
    config = dataclasses.replace(config, seed=seed, num_seeds=1, run_dir=sweep.directory / name)
    return RunSpec(name, config, variant, dict(overrides), (seed,))


def _build(sweep: Sweep, base: TrainConfig, variant: str, point: dict[str, Any]) -> tuple[TrainConfig, str]:
    """The validated config of one variant and grid point, and its label (variant and grid values)."""
    shown = dict(zip(sweep.grid, _grid_labels(sweep.grid), strict=True))
    what = ", ".join([f"variant {variant!r}"] * bool(variant) + [f"{k}={v!r}" for k, v in point.items()])
    try:
        config = apply_overrides(apply_overrides(base, sweep.variants[variant]), point)
        if config.wandb.group is None:  # a sweep's runs appear together in W&B
            config = dataclasses.replace(config, wandb=dataclasses.replace(config.wandb, group=sweep.name))
        validate(config)
        config = wiring.with_backend(config)  # named, as the run will record it
    except ValueError as error:
        raise ValueError(f"sweep {sweep.name}, run {what or 'base'}: {error}") from None
    parts = [f"{shown[k]}={value_label(read_field(config, k))}" for k in sweep.grid]
    return config, "-".join([variant] * bool(variant) + parts)


def read_field(config: TrainConfig, key: str) -> Any:
    """The value of dotted field `key` (the agent's name for "agent")."""
    key = field_name(key)
    if key == "agent":
        return config.agent_name
    value = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def validate(config: TrainConfig) -> None:
    """The checks `mtrl train` runs before building anything, plus the backend name."""
    wiring.check_trainable(config)
    backends = envs.BACKENDS[config.env.name]
    if config.env.backend is not None and config.env.backend not in backends:
        raise ValueError(
            f"env.backend {config.env.backend!r} is not available for {config.env.name}; "
            f"valid backends: {', '.join(backends)}"
        )


def seed_blocks(seeds: Sequence[int], together: bool) -> list[tuple[int, ...]]:
    """Seeds grouped into runs: runs of consecutive seeds when `together` (a run trains seed, seed+1, ...)."""
    ordered = sorted(seeds)
    if not together:
        return [(s,) for s in ordered]
    blocks: list[list[int]] = []
    for seed in ordered:
        if blocks and seed == blocks[-1][-1] + 1:
            blocks[-1].append(seed)
        else:
            blocks.append([seed])
    return [tuple(block) for block in blocks]


def seeds_label(block: Sequence[int]) -> str:
    return f"s{block[0]}" if len(block) == 1 else f"s{block[0]}-{block[-1]}"


def value_label(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "x".join(value_label(v) for v in value)
    if isinstance(value, str | int | float | bool) or value is None:
        return str(value)
    try:
        return agent_name_of(value)  # an agent Config given as a value
    except ValueError:
        return type(value).__name__


def _grid_labels(keys: Sequence[str]) -> list[str]:
    """The last part of each dotted key, or the whole key where two keys share a last part."""
    leaves = [field_name(k).rsplit(".", 1)[-1] for k in keys]
    return [leaf if leaves.count(leaf) == 1 else field_name(k) for k, leaf in zip(keys, leaves, strict=True)]


def _safe(name: str) -> str:
    return _SAFE.sub("_", name)


def _check_label(text: str, what: str) -> None:
    if not text or _SAFE.search(text) or text.startswith("."):
        raise ValueError(f"{what} {text!r} must be non-empty and use only letters, digits and . _ = + -")
