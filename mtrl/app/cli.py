"""`mtrl train` and `mtrl evaluate`.

`mtrl train [--preset NAME] [--agent NAME] [--any.config-field VALUE ...]`: the preset (default quickstart)
gives a full config, `--agent` swaps in another agent's default config, and tyro turns every remaining field
into a flag. `mtrl train --resume RUN_DIR` continues a stopped run from its newest checkpoint.
`mtrl evaluate RUN_DIR` re-evaluates a run's newest checkpoint: every goal of every task (multi-task agents),
or adaptation on held-out tasks and goals (meta-RL agents).
`mtrl report RUN_DIR... [--out DIR] [--compare-published]` aggregates runs over seeds with intervals.
`mtrl sweep FILE [--jobs N] [--dry-run] [--wandb-yaml PATH]` runs (or exports) the sweep FILE defines.
Exit status: 0 done, 2 bad input, 1 divergence or checkpoint failure, 130 stopped by a signal (resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import tyro

from mtrl.agents import AGENTS, get_agent
from mtrl.app.config import TrainConfig
from mtrl.app.presets import PRESETS, get_preset
from mtrl.checkpoint import CheckpointError
from mtrl.training import Diverged, Interrupted

USAGE = (
    "usage: mtrl {train,evaluate,report,sweep} ...  (mtrl train --help, mtrl evaluate --help, "
    "mtrl report --help, mtrl sweep --help)"
)


def parse_train_args(args: list[str]) -> TrainConfig:
    """The run's config from a preset, an optional agent swap and per-field overrides."""
    return parse_train_command(args)[0]


def parse_train_command(args: list[str]) -> tuple[TrainConfig, Path | None]:
    """The run's config (see `parse_train_args`) and the run directory given to `--resume`, if any.

    With `--resume RUN_DIR` the run's stored config is the starting point instead of a preset.
    """
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--preset", default="quickstart")
    chooser.add_argument("--agent", default=None)
    chooser.add_argument("--resume", type=Path, default=None)
    chosen, rest = chooser.parse_known_args(args)
    if chosen.resume is not None:
        if chosen.agent is not None or "--preset" in args:
            raise ValueError("--resume continues a run with its own config; drop --preset/--agent")
        from mtrl.app.config import load_run_config

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
    agent_cls = type(default.agent)
    unchecked = _unchecked(agent_cls)
    config = tyro.cli(
        TrainConfig[unchecked],
        default=dataclasses.replace(default, agent=unchecked(**_fields(default.agent))),
        args=rest,
        prog="mtrl train",
        description=description,
    )
    # Now the agent's own checks run, outside tyro: a bad value is one line naming it (tyro would box it).
    return dataclasses.replace(config, agent=agent_cls(**_fields(config.agent))), chosen.resume


def _unchecked(config_cls: type) -> type:
    """A twin of an agent's `Config` that checks nothing when built (tyro builds it while parsing)."""
    twin = type(config_cls.__name__, (config_cls,), {"__post_init__": lambda self: None})
    twin.__doc__ = config_cls.__doc__
    return dataclasses.dataclass(frozen=True, kw_only=True)(twin)


def _fields(config) -> dict:
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            config, resume_dir = parse_train_command(rest)
            from mtrl.app.run import resume, train  # heavy imports only once the flags are valid

            if resume_dir is None:
                train(config)
            else:
                resume(resume_dir, config)
        elif command == "evaluate":
            parser = argparse.ArgumentParser(prog="mtrl evaluate")
            parser.add_argument("run_dir", type=Path, help="a run directory written by mtrl train")
            parser.add_argument(
                "--protocol",
                choices=("all-goals", "moore", "meta"),
                default=None,
                help="all-goals: every goal of every task once, deterministic; moore: the MOORE authors' "
                "(10 episodes per task on random goals, sampled actions); meta: adapt on held-out "
                "tasks/goals, then score (default: the agent's own, all-goals plus moore where the run "
                "evaluated both)",
            )
            parser.add_argument(
                "--backend",
                default=None,
                help="evaluate on another backend of the run's benchmark (e.g. a policy trained on the "
                "MiniGrid port in Farama's own envs: --backend farama; default: the run's own)",
            )
            parsed = parser.parse_args(rest)
            from mtrl.app.run import evaluate_run

            evaluate_run(parsed.run_dir, protocol=parsed.protocol, backend=parsed.backend)
        elif command == "report":
            from mtrl.app.report import main as report

            report(rest)
        elif command == "sweep":
            from mtrl.app.sweep import main as sweep

            return sweep(rest)
        else:
            print(
                f"mtrl: unknown command {command!r}; valid commands: train, evaluate, report, sweep",
                file=sys.stderr,
            )
            return 2
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"mtrl: error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stopped:
        print(f"mtrl: {stopped}; continue with: mtrl train --resume {stopped.run_dir}", file=sys.stderr)
        return 130
    except (Diverged, CheckpointError) as error:
        print(f"mtrl: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
