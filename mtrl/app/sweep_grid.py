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

import ast
import dataclasses
import itertools
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtrl import envs
from mtrl.agents import get_agent
from mtrl.app import wiring
from mtrl.app.config import TrainConfig, agent_name_of
from mtrl.app.presets import get_preset

SWAPS = ("preset", "agent")  # applied before any field, in this order
NOT_SWEPT = ("seed", "num_seeds", "run_dir")  # the sweep itself sets these
WANDB_COMMAND = ("${env}", "${interpreter}", "-m", "mtrl.app.sweep", "agent", "${program}", "${args}")
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
    seed is its own run. Run names are deterministic, so a relaunch finds the runs it started before.
    """
    base = _base(sweep)
    runs = []
    for variant in sweep.variants:
        for values in itertools.product(*sweep.grid.values()):
            point = dict(zip(sweep.grid, values, strict=True))
            config, label = _build(sweep, base, variant, point)
            for block in seed_blocks(sweep.seeds, vmaps_seeds(config)):
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
    config, label = _build(sweep, _base(sweep), variant, dict(overrides))
    name = _safe("-".join([label] * bool(label) + [seeds_label((seed,))]))
    config = dataclasses.replace(config, seed=seed, num_seeds=1, run_dir=sweep.directory / name)
    return RunSpec(name, config, variant, dict(overrides), (seed,))


def _base(sweep: Sweep) -> TrainConfig:
    return get_preset(sweep.base) if isinstance(sweep.base, str) else sweep.base


def _build(sweep: Sweep, base: TrainConfig, variant: str, point: dict[str, Any]) -> tuple[TrainConfig, str]:
    """The validated config of one variant and grid point, and its label (variant and grid values)."""
    shown = dict(zip(sweep.grid, _grid_labels(sweep.grid), strict=True))
    what = ", ".join([f"variant {variant!r}"] * bool(variant) + [f"{k}={v!r}" for k, v in point.items()])
    try:
        config = apply_overrides(apply_overrides(base, sweep.variants[variant]), point)
        if config.wandb.group is None:  # a sweep's runs appear together in W&B
            config = dataclasses.replace(config, wandb=dataclasses.replace(config.wandb, group=sweep.name))
        validate(config)
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


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """`config` with dotted-name overrides applied; swaps (preset, agent) first, then fields in order.

    Values are coerced to the field's type; strings are parsed ("4", "3e-4", "False", "[64, 64]", "None"),
    so W&B's command-line values and Python values give the same typed config.
    """
    overrides = {field_name(k): v for k, v in overrides.items()}
    if "preset" in overrides:
        config = get_preset(str(overrides.pop("preset")))
    if "agent" in overrides:
        agent = overrides.pop("agent")
        if isinstance(agent, str):
            agent = get_agent(agent).Config()
        agent_name_of(agent)  # a known agent's Config, or a ValueError listing them
        config = dataclasses.replace(config, agent=agent)
    for key, value in overrides.items():
        config = _set_field(config, key, value)
    return config


def _set_field(config: TrainConfig, key: str, value: Any) -> TrainConfig:
    head, _, leaf = key.partition(".")
    if not leaf:
        hints = typing.get_type_hints(TrainConfig)
        scalars = [
            f.name for f in dataclasses.fields(TrainConfig) if not dataclasses.is_dataclass(hints[f.name])
        ]
        if head not in scalars or head == "agent":
            raise ValueError(f"unknown field {key!r}; valid top-level fields: {', '.join(scalars)}")
        return dataclasses.replace(config, **{head: coerce(value, hints[head], key)})
    if head not in ("agent", "env", "loop", "wandb"):
        raise ValueError(f"unknown field {key!r}; valid groups: agent, env, loop, wandb")
    group = getattr(config, head)
    names = [f.name for f in dataclasses.fields(group)]
    if leaf not in names:
        owner = config.agent_name if head == "agent" else head
        raise ValueError(f"unknown field {key!r} of {owner}; valid fields: {', '.join(names)}")
    typed = coerce(value, typing.get_type_hints(type(group))[leaf], key)
    try:
        return dataclasses.replace(config, **{head: dataclasses.replace(group, **{leaf: typed})})
    except ValueError as error:  # the agent's own checks, e.g. num_experts above the representation size
        raise ValueError(f"{key}={value!r}: {error}") from None


def coerce(value: Any, kind: Any, key: str) -> Any:
    """`value` as type `kind` (int, float, bool, str, Path, Literal, X | None, tuple[X, ...])."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value in ("None", "null")):
            if type(None) in args:
                return None
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, key)
            except ValueError:
                continue
        raise ValueError(f"{key}: {value!r} is not a valid {_type_name(kind)}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{key}: {value!r} is not valid; valid choices: {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        value = _literal(value)
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ValueError(f"{key}: expected a list of {_type_name(args[0])}, got {value!r}")
        return tuple(coerce(v, args[0], key) for v in value)
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if type(value) is not bool:
            raise ValueError(f"{key}: expected True or False, got {value!r}")
        return value
    if kind in (int, float):
        value = _literal(value)
        ok = type(value) is int or (kind is float and type(value) is float)
        if not ok:
            raise ValueError(f"{key}: expected {kind.__name__}, got {value!r}")
        return kind(value)
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return value
    if kind is Path:
        return Path(value)
    raise ValueError(f"{key}: fields of type {_type_name(kind)} cannot be swept")


def _literal(value: Any) -> Any:
    """A number or list written as text ("4", "3e-4", "[64, 64]") read as one; anything else unchanged."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value  # refused by the caller's type check, which names the field


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))


def validate(config: TrainConfig) -> None:
    """The checks `mtrl train` runs before building anything, plus the backend name."""
    wiring.check_compatible(config)
    backends = envs.BACKENDS[config.env.name]
    if config.env.backend is not None and config.env.backend not in backends:
        raise ValueError(
            f"env.backend {config.env.backend!r} is not available for {config.env.name}; "
            f"valid backends: {', '.join(backends)}"
        )


def vmaps_seeds(config: TrainConfig) -> bool:
    """Whether seeds of `config` can train in one vmapped program: only pure-JAX backends (the toy env)."""
    return (config.env.backend or envs.BACKENDS[config.env.name][0]) == "jax"


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


def field_name(key: str) -> str:
    return key.replace("-", "_")


def _grid_labels(keys: Sequence[str]) -> list[str]:
    """The last part of each dotted key, or the whole key where two keys share a last part."""
    leaves = [field_name(k).rsplit(".", 1)[-1] for k in keys]
    return [leaf if leaves.count(leaf) == 1 else field_name(k) for k, leaf in zip(keys, leaves, strict=True)]


def _safe(name: str) -> str:
    return _SAFE.sub("_", name)


def _check_label(text: str, what: str) -> None:
    if not text or _SAFE.search(text) or text.startswith("."):
        raise ValueError(f"{what} {text!r} must be non-empty and use only letters, digits and . _ = + -")


def wandb_sweep_config(sweep: Sweep, program: str) -> dict[str, Any]:
    """The same sweep as a W&B grid sweep (dict for YAML): one W&B run per variant × grid point × seed.

    `program` is the sweep file as the agents' machines see it (relative to where `wandb agent` runs);
    each agent calls `python -m mtrl.app.sweep agent <program> --variant=... --seed=... --<field>=...`.
    Runs log online (`wandb.mode` = online), since an agent exists to report to the sweep.
    """
    expand(sweep)  # refuse a sweep that cannot run before it reaches W&B
    base = _base(sweep)
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
    seed = coerce(values.pop("seed"), int, "seed")
    return variant, seed, values


__all__ = [
    "RunSpec",
    "Sweep",
    "apply_overrides",
    "build_run",
    "coerce",
    "expand",
    "parse_agent_args",
    "wandb_sweep_config",
]
