"""The one way text becomes a `TrainConfig`: tyro over the config dataclasses.

`mtrl train`'s command line, a sweep file's overrides, a W&B agent's `--key=value` arguments and the flags
given with `--resume` all go through `parse`, so a value means the same wherever it is written. `to_flags` is
its inverse: the flags that make `mtrl train` rebuild a config (the sweep launcher's command lines), checked
by parsing them back (`checked_flags`).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import io
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tyro

from mtrl.agents import AGENTS, get_agent
from mtrl.app.config import TrainConfig, agent_name_of, dotted_fields, load_run_config, to_json
from mtrl.app.presets import PRESETS, get_preset

FLAGS_BASE = "quickstart"  # flags of a config from no registered preset are given relative to this one
GROUPS = ("agent", "env", "loop", "wandb")


def parse(
    args: Sequence[str],
    default: TrainConfig,
    *,
    prog: str = "mtrl train",
    description: str | None = None,
    quiet: bool = False,
) -> TrainConfig:
    """`default` with the flags `args` applied (`--agent.num-experts 4`, `--loop.no-eval-before-training`).

    tyro parses; the agent's own checks run afterwards, so a bad agent value is a one-line ValueError rather
    than a box. `quiet`: tyro prints nothing and a refused flag raises ValueError (sweeps, W&B agents)
    instead of exiting.
    """
    agent_cls = type(default.agent)
    wired = get_agent(default.agent_name).TRAITS.wired_fields
    unchecked = _unchecked(agent_cls, hidden=wired)
    output = io.StringIO()
    redirect = (contextlib.redirect_stdout(output), contextlib.redirect_stderr(output)) if quiet else ()
    try:
        with contextlib.ExitStack() as stack:
            for context in redirect:
                stack.enter_context(context)
            config = tyro.cli(
                TrainConfig[unchecked],
                default=dataclasses.replace(default, agent=unchecked(**_fields(default.agent, hidden=wired))),
                args=list(args),
                prog=prog,
                description=description,
                console_outputs=not quiet,
            )
    except SystemExit as exit_:
        if not quiet or exit_.code == 0:
            raise
        raise ValueError(f"mtrl train cannot parse {' '.join(args)}") from None
    kept = {name: getattr(default.agent, name) for name in wired}  # data, not flags: carried over as is
    return dataclasses.replace(config, agent=agent_cls(**_fields(config.agent, hidden=wired), **kept))


def train_command(args: Sequence[str]) -> tuple[TrainConfig, Path | None]:
    """`mtrl train`'s config and the run directory given to `--resume`, if any.

    `--preset NAME` (default quickstart) or `--resume RUN_DIR` (the run's stored config) is the starting
    point, `--agent NAME` swaps in that agent's default config, and every other flag overrides a field.
    """
    args = list(args)
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--preset", default="quickstart")
    chooser.add_argument("--agent", default=None)
    chooser.add_argument("--resume", type=Path, default=None)
    chosen, rest = chooser.parse_known_args(args)
    if chosen.resume is not None:
        if chosen.agent is not None or "--preset" in args:
            raise ValueError("--resume continues a run with its own config; drop --preset/--agent")
        default = load_run_config(chosen.resume)
    else:
        default = get_preset(chosen.preset)
    if chosen.agent is not None:
        default = dataclasses.replace(default, agent=get_agent(chosen.agent).Config())
    description = (
        f"Train a multi-task agent. --preset {{{','.join(PRESETS)}}} (default quickstart) picks the "
        f"starting config, --agent {{{','.join(AGENTS)}}} swaps the agent, --resume RUN_DIR continues a "
        "stopped run; every field below can be overridden. "
        f"Now: preset {default.preset}, agent {default.agent_name}."
    )
    return parse(rest, default, description=description), chosen.resume


def parse_train_args(args: Sequence[str]) -> TrainConfig:
    """The config `mtrl train ARGS` would train (no `--resume`)."""
    return train_command(args)[0]


# ---- overrides by dotted field name (sweep files, W&B agents) -----------------------------------------


def field_name(key: str) -> str:
    """A dotted field name with dashes read as underscores (`loop.batch-per-task` = `loop.batch_per_task`)."""
    return key.replace("-", "_")


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """`config` with dotted-name overrides applied, through `parse`; swaps first (`preset`: start from that
    preset; `agent`: an agent name for its default `Config`, or a `Config` instance), then fields.

    Values are Python values (a sweep file's) or the text W&B passes ("4", "3e-4", "False", "[64, 64]",
    "None"), read as Python literals and then typed by tyro like any flag.
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
    for key in overrides:
        _check_field(config, key)
    tokens = [token for key, value in overrides.items() for token in field_tokens(config, key, value)]
    try:
        return parse(tokens, config, quiet=True)
    except ValueError:
        pass
    for key, value in overrides.items():  # name the override that was refused
        try:
            parse(field_tokens(config, key, value), config, quiet=True)
        except ValueError as error:
            if "cannot parse" in str(error):  # tyro refused the value's type
                raise ValueError(f"{key}={value!r} is {_refusal(_field_type(config, key))}") from None
            raise ValueError(f"{key}={value!r}: {error}") from None  # the agent's own checks
    raise ValueError(f"overrides {dict(overrides)} cannot be applied together")


def field_tokens(config: TrainConfig, key: str, value: Any) -> list[str]:
    """The command-line tokens that set dotted field `key` of `config` to `value`. Text is read as a Python
    literal ("[64, 64]", "False", "None") unless the field holds text, where only "None" means None."""
    if isinstance(value, str) and _holds_text(_field_type(config, key)):
        return _tokens(key, None if value in ("None", "null") else value)
    return _tokens(key, _literal(value))


def _holds_text(kind: Any) -> bool:
    """Whether a field of type `kind` takes text: str, a Literal of strings, or either or None."""
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    for option in options:
        if option is str or option is Path:
            return True
        if typing.get_origin(option) is typing.Literal and all(
            isinstance(a, str) for a in typing.get_args(option)
        ):
            return True
    return False


def _tokens(key: str, value: Any) -> list[str]:
    flag = "--" + field_name(key).replace("_", "-")
    if isinstance(value, bool):
        head, _, leaf = flag.rpartition(".")
        return [flag if value else f"{head}.no-{leaf}" if head else f"--no-{leaf[2:]}"]
    if isinstance(value, list | tuple):
        return [flag, *(_text(v) for v in value)]
    return [flag, _text(value)]


def _text(value: Any) -> str:
    if value is None:
        return "None"
    return repr(value) if isinstance(value, float) else str(value)


def _literal(value: Any) -> Any:
    """A number, bool, None or list written as text (as W&B passes it) read as one; other text unchanged."""
    if not isinstance(value, str):
        return value
    if value in ("true", "false", "null"):  # YAML's spellings
        return {"true": True, "false": False, "null": None}[value]
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value


def _check_field(config: TrainConfig, key: str) -> None:
    """A one-line error naming the valid fields when `key` names none."""
    head, _, leaf = key.partition(".")
    if not leaf:
        scalars = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in GROUPS]
        if head not in scalars:
            raise ValueError(f"unknown field {key!r}; valid top-level fields: {', '.join(scalars)}")
        return
    if head not in GROUPS:
        raise ValueError(f"unknown field {key!r}; valid groups: {', '.join(GROUPS)}")
    names = [f.name for f in dataclasses.fields(getattr(config, head))]
    if leaf not in names:
        owner = config.agent_name if head == "agent" else head
        raise ValueError(f"unknown field {key!r} of {owner}; valid fields: {', '.join(names)}")


def _field_type(config: TrainConfig, key: str) -> Any:
    head, _, leaf = field_name(key).partition(".")
    owner = type(getattr(config, head)) if leaf else TrainConfig
    return typing.get_type_hints(owner)[leaf or head]


def _refusal(kind: Any) -> str:
    """Why a value was refused for a field of type `kind`, naming the valid choices where there are few."""
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    choices = [c for o in options if typing.get_origin(o) is typing.Literal for c in typing.get_args(o)]
    if type(None) in options:
        choices.append(None)
    if choices and all(typing.get_origin(o) is typing.Literal or o is type(None) for o in options):
        return f"not valid; valid choices: {', '.join(map(str, choices))}"
    return "not a valid " + " or ".join(_type_name(o) for o in options)


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return f"list of {_type_name(typing.get_args(kind)[0])}"
    return "None" if kind is type(None) else getattr(kind, "__name__", str(kind))


# ---- the inverse: flags for a config --------------------------------------------------------------------


def to_flags(config: TrainConfig, base: TrainConfig | None = None) -> list[str]:
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
        flags += _tokens(key, value)
    return flags


def checked_flags(config: TrainConfig) -> list[str]:
    """`to_flags`, verified: `parse` must give back `config` exactly (its preset aside)."""
    flags = to_flags(config)
    try:
        parsed = parse_train_args(flags)
    except SystemExit:
        raise ValueError(f"run {config.run_dir}: mtrl train cannot parse {' '.join(flags)}") from None
    if config.preset not in PRESETS:
        parsed = dataclasses.replace(parsed, preset=config.preset)
    if parsed != config:
        new = dotted_fields(to_json(parsed))
        diff = [k for k, v in dotted_fields(to_json(config)).items() if new.get(k) != v]
        raise ValueError(f"run {config.run_dir}: flags {' '.join(flags)} do not reproduce fields {diff}")
    return flags


def _unchecked(config_cls: type, hidden: tuple[str, ...] = ()) -> type:
    """A twin of an agent's `Config` that checks nothing when built (tyro builds it while parsing), with its
    `hidden` fields suppressed (the agent's wired fields: data the wiring fills, never flags)."""
    hints = typing.get_type_hints(config_cls)
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
    namespace = {
        "__post_init__": lambda self: None,
        "__doc__": config_cls.__doc__,
        "__annotations__": {name: tyro.conf.Suppress[hints[name]] for name in hidden},
        **{name: defaults[name] for name in hidden},
    }
    twin = type(config_cls.__name__, (config_cls,), namespace)
    return dataclasses.dataclass(frozen=True, kw_only=True)(twin)


def _fields(config, hidden: tuple[str, ...] = ()) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in hidden}
