"""Crash and resume, N times at random points: how many resumed runs match an uninterrupted one, bit for bit?

    python experiments/bench/crash_resume.py [--small] [--runs 5] [--env toy|metaworld] [--seed 0]

One uninterrupted `mtrl train` run is the reference. Then N copies of the same run are each killed with
SIGKILL at a random point of training, resumed with `mtrl train --resume`, and their `metrics.jsonl`
compared line by line with the reference (every metric except the wall-clock values). Prints each kill
point and the count of matching runs.

The kill point is drawn in training progress, not in seconds: a number of metric lines between the first
and the second-to-last training line of the reference, plus a random delay of up to half the reference's
time between two lines; the run is killed that long after it has written that many lines and has a
checkpoint. Drawn in seconds, a busy machine can stretch or shrink a run enough
that the kill lands after training ended, where a resume has nothing left to do.

`--small`, for a quick check: a shorter run (toy: 2 tasks, 1,500 steps per task, evaluated only at the end;
metaworld: 800 steps per task), one kill unless `--runs` says otherwise, and the run folders removed when
all matched.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mtrl.logger import ELAPSED, without_wall_clock

SMALL_RUN = """
    --agent mt_sac --agent.hidden-sizes 32 32 --loop.steps-per-iteration 25 --loop.batch-per-task 32
    --loop.eval-envs-per-task 2 --loop.eval-goals-per-task 2 --wandb.mode disabled
""".split()
ENVS = {
    "toy": """--env.name toy --env.envs-per-task 4 --loop.steps-per-task 6000 --loop.warmup-steps-per-task 400
        --loop.replay-per-task 4000 --loop.eval-every-steps-per-task 2000 --loop.log-every-steps-per-task 200
        --loop.checkpoint-every-steps-per-task 300 --agent.initial-alpha 0.1""".split(),
    "metaworld": """--env.name MT1 --env.task reach-v3 --env.envs-per-task 2 --loop.steps-per-task 2000
        --loop.warmup-steps-per-task 300 --loop.replay-per-task 3000 --loop.eval-every-steps-per-task 1000
        --loop.log-every-steps-per-task 100 --loop.checkpoint-every-steps-per-task 200""".split(),
}
# `--small`: appended to the flags above (later flags win). The first checkpoint comes after the first
# training iteration, so every program a killed run needs after it is compiled by then.
SMALL_ENVS = {
    "toy": """--env.toy-num-tasks 2 --loop.steps-per-task 1500 --loop.warmup-steps-per-task 200
        --loop.replay-per-task 1500 --loop.eval-every-steps-per-task 0 --loop.log-every-steps-per-task 100
        --loop.checkpoint-every-steps-per-task 300""".split(),
    "metaworld": """--loop.steps-per-task 800 --loop.warmup-steps-per-task 100 --loop.replay-per-task 800
        --loop.eval-every-steps-per-task 0 --loop.checkpoint-every-steps-per-task 200""".split(),
}


def train(args: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "mtrl.app.cli", "train", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def check(process: subprocess.Popen) -> None:
    output, _ = process.communicate()
    if process.returncode != 0:
        sys.exit(f"mtrl train failed ({process.returncode}):\n{output.decode()[-3000:]}")


def raw_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def metrics(run_dir: Path) -> list[dict]:
    """The run's metrics lines without their wall-clock values."""
    return [without_wall_clock(line) for line in raw_metrics(run_dir)]


def checkpoints(run_dir: Path) -> list[Path]:
    directory = run_dir / "checkpoints"
    return [p for p in directory.iterdir() if p.name.isdigit()] if directory.exists() else []


def has_checkpoint(run_dir: Path) -> bool:
    return bool(checkpoints(run_dir))


def kill_at_line(flags: list[str], run_dir: Path, line: int, delay: float) -> float:
    """Start a run and SIGKILL it `delay` seconds after it has a checkpoint and `line` metric lines; returns
    the seconds from its first checkpoint to the kill."""
    process = train([*flags, "--run-dir", str(run_dir)])
    while not has_checkpoint(run_dir):
        if process.poll() is not None:
            sys.exit("the run ended before its first checkpoint")
        time.sleep(0.02)
    first_checkpoint = time.perf_counter()
    while len(metric_lines(run_dir)) < line:
        if process.poll() is not None:
            sys.exit(f"the run ended before writing {line} metric lines")
        time.sleep(0.02)
    time.sleep(delay)
    if process.poll() is not None:
        sys.exit("the run ended before the kill; lengthen the run")
    process.send_signal(signal.SIGKILL)
    process.wait()
    return time.perf_counter() - first_checkpoint


def metric_lines(run_dir: Path) -> list[str]:
    path = run_dir / "metrics.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="a shorter run, 1 kill")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--env", choices=sorted(ENVS), default="toy")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    args = parser.parse_args(argv)
    if args.small:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(runs=1)
        args = parser.parse_args(argv)
    flags = SMALL_RUN + ENVS[args.env] + (SMALL_ENVS[args.env] if args.small else [])
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="mtrl-crash-resume-"))

    started = time.perf_counter()
    reference = root / "reference"
    check(train([*flags, "--run-dir", str(reference)]))
    print(f"reference run: {time.perf_counter() - started:.0f} s, {len(metrics(reference))} metric lines")
    # kill points: after the first training line, before the second-to-last one (after the last ones a
    # resume has nothing left to do)
    elapsed = [
        line[ELAPSED] for line in raw_metrics(reference) if not any(k.startswith("eval") for k in line)
    ]
    if len(elapsed) < 3:
        sys.exit(f"the reference wrote {len(elapsed)} training lines; lengthen the run")
    line_interval = (elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)

    matched = 0
    for i in range(args.runs):
        run_dir = root / f"crash{i}"
        line = rng.randint(1, len(elapsed) - 2)
        delay = kill_at_line(flags, run_dir, line, rng.uniform(0.0, line_interval / 2))
        kept = len(metrics(run_dir))
        check(train(["--resume", str(run_dir)]))
        same = metrics(run_dir) == metrics(reference)
        matched += same
        print(f"run {i}: SIGKILL {delay:.2f} s after the first checkpoint ({kept} lines written), resumed: "
              f"{'identical' if same else 'DIFFERENT'}")  # fmt: skip
    print(f"\n{matched}/{args.runs} resumed runs matched the uninterrupted run bit for bit ({args.env})")
    if args.small and matched == args.runs:
        shutil.rmtree(root)
    else:
        print(f"runs kept in {root}")


if __name__ == "__main__":
    main()
