"""Gradient-update throughput at MT10 shapes: MOORE-SAC against MT-SAC and MT-MH-SAC.

Why: with one gradient step per vector step, the update is the other half of training cost beside
the env; this says what MOORE's k experts and per-sample Gram-Schmidt cost relative to a plain MLP,
measured in the same process. Shapes: obs 49 (39 + one-hot of 10 tasks), action 4, batch 1280
(128 per task), 400×3 networks, 2 critics, MOORE with 4 experts. Updates run in a jitted `lax.scan`
(as the training loop runs them) over a fixed random batch, after a warm-up call that compiles.
`--small` shrinks every network to 64-wide layers (2 hidden) and the batch to 32 per task, for a quick check.

Run: `python experiments/bench/update_throughput.py [--small] [--updates 4] [--rounds 3]` (~1 min, 2 cores).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import jax
import numpy as np
from mtrl.agents import get_agent

from mtrl.types import EnvSpec, Transition

AGENT_NAMES = ("mt_sac", "mh_sac", "moore_sac")
MT10 = EnvSpec(
    name="MT10-shapes",
    obs_size=49,
    action_size=4,
    task_names=tuple(f"task-{t}" for t in range(10)),
    envs_per_task=1,
    episode_length=500,
    goals_per_task=50,
)
BATCH_PER_TASK = 128
SMALL_BATCH_PER_TASK = 32
SMALL_HIDDEN = (64, 64)


def random_batch(spec: EnvSpec, batch_per_task: int, seed: int = 0) -> Transition:
    """A task-balanced batch of random rows with the given shapes."""
    rng = np.random.default_rng(seed)
    n = spec.num_tasks * batch_per_task
    return Transition(
        obs=rng.normal(size=(n, spec.obs_size)).astype(np.float32),
        action=rng.uniform(-1, 1, size=(n, spec.action_size)).astype(np.float32),
        reward=rng.uniform(0, 10, size=n).astype(np.float32),
        next_obs=rng.normal(size=(n, spec.obs_size)).astype(np.float32),
        terminated=np.zeros(n, np.float32),
        task_id=np.repeat(np.arange(spec.num_tasks, dtype=np.int32), batch_per_task),
    )


def run_updates(update, state, batch: Transition, key: jax.Array, num_updates: int):
    """`num_updates` agent updates on `batch` inside one scan; returns the final state."""

    def body(state, key):
        state, metrics = update(state, batch, key)
        return state, metrics["train/critic_loss"]

    state, losses = jax.lax.scan(body, state, jax.random.split(key, num_updates))
    return state, losses


def compile_agent(name: str, num_updates: int, small: bool = False) -> Callable[[jax.Array], float]:
    """Build agent `name` at MT10 shapes, compile its update scan, return a timer of one call."""
    agent = get_agent(name)
    config = agent.Config(hidden_sizes=SMALL_HIDDEN) if small else agent.Config()
    state = agent.init(jax.random.key(0), MT10, config)
    batch_per_task = SMALL_BATCH_PER_TASK if small else BATCH_PER_TASK
    return compile_updates(name, agent.update, state, batch_per_task, num_updates)


def compile_updates(
    name: str, update, state, batch_per_task: int, num_updates: int
) -> Callable[[jax.Array], float]:
    """Compile `num_updates` updates of `state` on a fixed random batch; return a timer of one call."""
    batch = jax.device_put(random_batch(MT10, batch_per_task))
    run = jax.jit(functools.partial(run_updates, update, num_updates=num_updates))
    _, losses = jax.block_until_ready(run(state, batch, jax.random.key(1)))  # compiles
    if not np.all(np.isfinite(losses)):
        raise RuntimeError(f"{name}: non-finite critic loss during the benchmark")

    def time_call(key: jax.Array) -> float:
        start = time.perf_counter()
        jax.block_until_ready(run(state, batch, key))
        return time.perf_counter() - start

    return time_call


def measure(num_updates: int, rounds: int, small: bool = False) -> dict[str, float]:
    """Best-of-`rounds` updates/s per agent; rounds interleave agents, so load drift hits all."""
    timers = {name: compile_agent(name, num_updates, small) for name in AGENT_NAMES}
    best = dict.fromkeys(AGENT_NAMES, float("inf"))
    for i in range(rounds):
        for name, time_call in timers.items():
            best[name] = min(best[name], time_call(jax.random.key(2 + i)))
    return {name: num_updates / seconds for name, seconds in best.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="64x2 networks, batch 32 per task")
    parser.add_argument("--updates", type=int, default=4, help="updates per timed jitted call")
    parser.add_argument("--rounds", type=int, default=3, help="timed calls per agent (best kept)")
    args = parser.parse_args(argv)
    batch_per_task, hidden = (SMALL_BATCH_PER_TASK, "64x2") if args.small else (BATCH_PER_TASK, "400x3")
    print(
        f"devices: {jax.devices()}; obs {MT10.obs_size}, action {MT10.action_size}, "
        f"{MT10.num_tasks} tasks, batch {MT10.num_tasks * batch_per_task}, hidden {hidden}, "
        f"2 critics, MOORE 4 experts"
    )
    rates = measure(args.updates, args.rounds, args.small)
    for name, rate in rates.items():
        print(
            f"{name:>10}: {rate:8.2f} updates/s  {1000 / rate:8.1f} ms/update  "
            f"{rate / rates['mt_sac']:.2f}x MT-SAC"
        )


if __name__ == "__main__":
    main()
