"""`mtrl train` and `mtrl evaluate`.

`mtrl train [--preset NAME] [--agent NAME] [--any.config-field VALUE ...]`: the preset (default quickstart)
gives a full config, `--agent` swaps in another agent's default config, and tyro turns every remaining field
into a flag. `mtrl train --resume RUN_DIR` continues a stopped run from its newest checkpoint.
`mtrl evaluate RUN_DIR` re-evaluates a run's newest checkpoint: every goal of every task (multi-task agents),
or adaptation on held-out tasks and goals (meta-RL agents); `--video [--tasks ...] [--episodes N]` films it.
`mtrl report RUN_DIR... [--out DIR] [--compare-published]` aggregates runs over seeds with intervals.
`mtrl sweep FILE [--jobs N] [--dry-run] [--wandb-yaml PATH] [--launcher slurm ...]` runs (or exports) the
sweep FILE defines, here or as Slurm jobs.
Exit status: 0 done, 2 bad input, 1 divergence or checkpoint failure, 130 stopped by a signal (resumable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtrl.app import report, sweep
from mtrl.app.errors import run_command
from mtrl.app.evaluate import evaluate_run, film_run
from mtrl.app.flags import train_command
from mtrl.app.resume import resume
from mtrl.app.run import train
from mtrl.app.videos import VideoRequest

USAGE = (
    "usage: mtrl {train,evaluate,report,sweep} ...  (mtrl train --help, mtrl evaluate --help, "
    "mtrl report --help, mtrl sweep --help)"
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    commands = {"train": _train, "evaluate": _evaluate, "report": report.main, "sweep": sweep.main}
    if command not in commands:
        print(f"mtrl: unknown command {command!r}; valid commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    return run_command(
        lambda: commands[command](rest),
        on_interrupt=lambda stopped: f"continue with: mtrl train --resume {stopped.run_dir}",
    )


def _train(args: list[str]) -> None:
    config, resume_dir = train_command(args)
    if resume_dir is None:
        train(config)
    else:
        resume(resume_dir, config)


def _evaluate(args: list[str]) -> None:
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
    parser.add_argument(
        "--video",
        action="store_true",
        help="film greedy episodes instead of scoring: one MP4 and one GIF per task in "
        "RUN_DIR/videos/step-<checkpoint step>/, also logged to the run's W&B run (Meta-World and MiniGrid)",
    )
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="with --video: the tasks to film")
    parser.add_argument("--episodes", type=int, default=1, help="with --video: episodes per task (default 1)")
    parser.add_argument(
        "--camera", default=None, help="with --video, Meta-World: the scene camera (default corner)"
    )
    parsed = parser.parse_args(args)
    if parsed.video:
        if parsed.protocol or parsed.backend:
            parser.error("--video films the run on its own backend; --protocol and --backend do not apply")
        request = VideoRequest(tuple(parsed.tasks) if parsed.tasks else None, parsed.episodes, parsed.camera)
        film_run(parsed.run_dir, request)
        return
    for flag in ("tasks", "camera"):
        if getattr(parsed, flag) is not None:
            parser.error(f"--{flag} is for --video")
    evaluate_run(parsed.run_dir, protocol=parsed.protocol, backend=parsed.backend)


if __name__ == "__main__":
    sys.exit(main())
