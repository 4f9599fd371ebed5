"""Crash and resume, N times at random points: how many resumed runs match an uninterrupted one, bit for bit?

    python experiments/bench/crash_resume.py [--small] [--runs 5] [--env toy|metaworld] [--seed 0]

One uninterrupted `mtrl train` run is the reference. Then N copies of the same run are each killed with
SIGKILL at a random moment (after the first checkpoint, before the end), resumed with
`mtrl train --resume`, and their `metrics.jsonl` compared line by line with the reference (every metric
except the wall-clock values). Prints each kill point and the count of matching runs.

`--small`, for a quick check: a shorter run (toy: 2 tasks, 1,500 steps per task, evaluated only at the end;
metaworld: 800 steps per task), one kill unless `--runs` says otherwise, kill times drawn within the first
half of the reference's training (first to last checkpoint: a short run's tail is mostly its final
evaluation, whose compile the reference alone may pay when a compilation cache is shared, and a killed run
that ends before its kill fails the script), and the run folders removed when all matched.
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

from mtrl.logger import without_wall_clock

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


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [without_wall_clock(json.loads(line)) for line in lines]


def checkpoints(run_dir: Path) -> list[Path]:
    directory = run_dir / "checkpoints"
    return [p for p in directory.iterdir() if p.name.isdigit()] if directory.exists() else []


def has_checkpoint(run_dir: Path) -> bool:
    return bool(checkpoints(run_dir))


def kill_at_random(
    flags: list[str], run_dir: Path, rng: random.Random, duration: float, window: float = 0.8
) -> float:
    """Start a run, SIGKILL it at a random time after its first checkpoint, within the first `window` of
    `duration`; returns seconds after it."""
    process = train([*flags, "--run-dir", str(run_dir)])
    while not has_checkpoint(run_dir):
        if process.poll() is not None:
            sys.exit("the run ended before its first checkpoint")
        time.sleep(0.02)
    delay = rng.uniform(0.0, window * duration)
    time.sleep(delay)
    if process.poll() is not None:
        sys.exit("the run ended before the kill; lengthen the run")
    process.send_signal(signal.SIGKILL)
    process.wait()
    return delay


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
    process = train([*flags, "--run-dir", str(reference)])
    while not has_checkpoint(reference) and process.poll() is None:
        time.sleep(0.02)
    first_checkpoint, first_checkpoint_clock = time.perf_counter(), time.time()
    check(process)
    training_time = time.perf_counter() - first_checkpoint
    if args.small:  # up to the last checkpoint (written when training ends; its folder's mtime)
        last = max(checkpoints(reference), key=lambda p: int(p.name))
        training_time = last.stat().st_mtime - first_checkpoint_clock
    print(f"reference run: {time.perf_counter() - started:.0f} s, {len(metrics(reference))} metric lines")

    matched = 0
    for i in range(args.runs):
        run_dir = root / f"crash{i}"
        delay = kill_at_random(flags, run_dir, rng, training_time, window=0.5 if args.small else 0.8)
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
