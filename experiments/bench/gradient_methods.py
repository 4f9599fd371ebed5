"""Update throughput of each multi-task gradient method at MT10 shapes, as a ratio to the mean.

Why: PCGrad, CAGrad, Aligned-MTL, GradNorm and FAMO need one gradient per task (a vmapped backward
pass with a task axis on the parameter gradients, then a T×T Gram matrix and a weighted sum);
this says what that costs against plain averaging, measured in the same process, for MT-SAC and
MOORE-SAC. Shapes as `update_throughput.py`: obs 49, action 4, 10 tasks × 128 rows, 2 critics,
400×3 networks (MOORE 4 experts). `--small`, for a quick check: hidden (64, 64), 32 rows per task and
MT-SAC only (`--agents` still picks).

Run: `python experiments/bench/gradient_methods.py [--small] [--updates 4] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
from mtrl.agents import get_agent
from mtrl.agents.gradient_methods import GRADIENT_METHODS

sys.path.insert(0, str(Path(__file__).parent))

from update_throughput import (  # noqa: E402
    BATCH_PER_TASK,
    MT10,
    SMALL_BATCH_PER_TASK,
    SMALL_HIDDEN,
    random_batch,
    run_updates,
)

AGENT_NAMES = ("mt_sac", "moore_sac")


def compile_update(
    agent_name: str, method: str, hidden: tuple[int, ...], batch_per_task: int, num_updates: int
) -> Callable[[jax.Array], float]:
    """Compile `num_updates` updates of agent × method in one scan; return a timer of one call."""
    agent = get_agent(agent_name)
    config = agent.Config(hidden_sizes=hidden, gradient_method=method)
    state = agent.init(jax.random.key(0), MT10, config)
    batch = jax.device_put(random_batch(MT10, batch_per_task))
    run = jax.jit(functools.partial(run_updates, agent.update, num_updates=num_updates))
    _, losses = jax.block_until_ready(run(state, batch, jax.random.key(1)))  # compiles
    if not np.all(np.isfinite(losses)):
        raise RuntimeError(f"{agent_name}/{method}: non-finite critic loss during the benchmark")

    def time_call(key: jax.Array) -> float:
        start = time.perf_counter()
        jax.block_until_ready(run(state, batch, key))
        return time.perf_counter() - start

    return time_call


def measure(
    agent_name: str, hidden: tuple[int, ...], batch_per_task: int, num_updates: int, rounds: int
) -> dict[str, float]:
    """Best-of-`rounds` updates/s per method; rounds interleave methods, so load drift hits all."""
    timers = {m: compile_update(agent_name, m, hidden, batch_per_task, num_updates) for m in GRADIENT_METHODS}
    best = dict.fromkeys(GRADIENT_METHODS, float("inf"))
    for i in range(rounds):
        for method, time_call in timers.items():
            best[method] = min(best[method], time_call(jax.random.key(2 + i)))
    return {method: num_updates / seconds for method, seconds in best.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="hidden (64, 64), 32 rows per task, mt_sac unless --agents"
    )
    parser.add_argument("--updates", type=int, default=4, help="updates per timed jitted call")
    parser.add_argument("--rounds", type=int, default=3, help="timed calls per method (best kept)")
    parser.add_argument("--agents", nargs="+", default=list(AGENT_NAMES), choices=AGENT_NAMES)
    args = parser.parse_args(argv)
    if args.small:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(agents=["mt_sac"])
        args = parser.parse_args(argv)
    hidden = SMALL_HIDDEN if args.small else (400, 400, 400)
    batch_per_task = SMALL_BATCH_PER_TASK if args.small else BATCH_PER_TASK
    print(
        f"devices: {jax.devices()}; {MT10.num_tasks} tasks, batch {MT10.num_tasks * batch_per_task}, "
        f"hidden {hidden}, 2 critics, MOORE 4 experts"
    )
    for agent_name in args.agents:
        rates = measure(agent_name, hidden, batch_per_task, args.updates, args.rounds)
        for method, rate in rates.items():
            print(
                f"{agent_name:>10} {method:>12}: {rate:8.2f} updates/s  {1000 / rate:8.1f} ms/update  "
                f"{rate / rates['mean']:.2f}x mean"
            )


if __name__ == "__main__":
    main()
