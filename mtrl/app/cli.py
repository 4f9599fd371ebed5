"""`mtrl train` and `mtrl evaluate`.

`mtrl train [--preset NAME] [--agent NAME] [--any.config-field VALUE ...]`: the preset (default quickstart)
gives a full config, `--agent` swaps in another agent's default config, and tyro turns every remaining field
into a flag. `mtrl evaluate RUN_DIR` re-evaluates a run's newest checkpoint on every goal of every task.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import tyro

from mtrl.agents import get_agent
from mtrl.app.config import TrainConfig
from mtrl.app.presets import PRESETS, get_preset

USAGE = "usage: mtrl {train,evaluate} ...  (mtrl train --help, mtrl evaluate --help)"


def parse_train_args(args: list[str]) -> TrainConfig:
    """Build the run's config from a preset, an optional agent swap and per-field overrides."""
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--preset", default="quickstart")
    chooser.add_argument("--agent", default=None)
    chosen, rest = chooser.parse_known_args(args)
    default = get_preset(chosen.preset)
    if chosen.agent is not None:
        default = dataclasses.replace(default, agent=get_agent(chosen.agent).Config())
    description = (
        f"Train a multi-task agent. --preset {{{','.join(PRESETS)}}} (default quickstart) picks the "
        "starting config, --agent {mt_sac,mh_sac,moore_sac} swaps the agent; every field below "
        f"can be overridden. Now: preset {chosen.preset}, agent {default.agent_name}."
    )
    return tyro.cli(
        TrainConfig[type(default.agent)],
        default=default,
        args=rest,
        prog="mtrl train",
        description=description,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            config = parse_train_args(rest)
            from mtrl.app.run import train  # heavy imports only once the flags are valid

            train(config)
        elif command == "evaluate":
            parser = argparse.ArgumentParser(prog="mtrl evaluate")
            parser.add_argument("run_dir", type=Path, help="a run directory written by mtrl train")
            run_dir = parser.parse_args(rest).run_dir
            from mtrl.app.run import evaluate_run

            evaluate_run(run_dir)
        else:
            print(
                f"mtrl: unknown command {command!r}; valid commands: train, evaluate",
                file=sys.stderr,
            )
            return 2
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"mtrl: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
