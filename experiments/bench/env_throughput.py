"""Env throughput on MT10: metaworld's own sync vector env vs our `official` backend inside jit.

Why: the official backend adds one ordered io_callback per vector step around metaworld's own
stepping; this measures what that costs (ours/theirs near 1 means the bridge into jit is cheap)
and gives the baseline that faster backends have to beat. Both run 1 env per task with uniform
random actions, auto-resetting at the 500-step truncation.

Run: `python experiments/bench/env_throughput.py [--steps 1000] [--rounds 4]` (about a minute).
"""

from __future__ import annotations

import argparse
import functools
import os
import time
import warnings
from collections.abc import Callable

import gymnasium as gym
import jax
import metaworld  # noqa: F401  (registers the Meta-World gymnasium ids)
import numpy as np
from mtrl.envs.metaworld import make_metaworld

NUM_ENVS = 10  # MT10, one env per task, in both measurements


def metaworld_runner(seed: int) -> Callable[[int], float]:
    """Time n steps of `gym.make_vec("Meta-World/MT10", vector_strategy="sync")`, random actions."""
    envs = gym.make_vec("Meta-World/MT10", vector_strategy="sync", seed=seed, use_one_hot=True)
    envs.reset(seed=seed)  # same-step autoreset (the default) resets truncated envs inside step()
    envs.action_space.seed(seed)

    def run(num_steps: int) -> float:
        start = time.perf_counter()
        for _ in range(num_steps):
            envs.step(envs.action_space.sample())
        return time.perf_counter() - start

    return run


def random_rollout(env, state, key: jax.Array, num_steps: int):
    """Step `env` `num_steps` times with uniform random actions inside one lax.scan."""
    shape = (env.spec.num_envs, env.spec.action_size)

    def body(carry, _):
        state, key = carry
        key, action_key = jax.random.split(key)
        action = jax.random.uniform(action_key, shape, minval=-1.0, maxval=1.0)
        state, step = env.step(state, action)
        return (state, key), step.reward.sum()

    (state, key), rewards = jax.lax.scan(body, (state, key), None, length=num_steps)
    return state, key, rewards


def official_runner(seed: int, num_steps: int) -> Callable[[], float]:
    """Time `num_steps` steps of our official backend in a jitted lax.scan (compiled beforehand)."""
    env = make_metaworld("MT10", seed=seed)
    state, _ = env.reset(jax.random.key(seed))
    key = jax.random.key(seed + 1)
    rollout = jax.jit(functools.partial(random_rollout, env, num_steps=num_steps))
    compiled = rollout.lower(state, key).compile()

    def run() -> float:
        nonlocal state, key
        start = time.perf_counter()
        state, key, _ = jax.block_until_ready(compiled(state, key))
        return time.perf_counter() - start

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="timed vector steps per backend")
    parser.add_argument("--rounds", type=int, default=4, help="alternating timed rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")

    chunk = args.steps // args.rounds
    run_theirs = metaworld_runner(args.seed)
    run_ours = official_runner(args.seed, chunk)
    run_theirs(chunk), run_ours()  # warm-up round, untimed
    # alternate rounds so that both see the same background load on a shared machine
    times = np.array([(run_theirs(chunk), run_ours()) for _ in range(args.rounds)])
    theirs, ours = NUM_ENVS * chunk * args.rounds / times.sum(axis=0)
    round_ratios = times[:, 0] / times[:, 1]

    print(
        f"MT10, {NUM_ENVS} envs (1 per task), {args.rounds} alternating rounds of {chunk} vector "
        f"steps after a warm-up round; jax {jax.__version__} on {jax.default_backend()}, "
        f"{os.cpu_count()} CPU cores"
    )
    rows = [("metaworld sync vector env", theirs), ("official backend, jit+scan", ours)]
    for label, rate in rows:
        ms_per_step = 1e3 * NUM_ENVS / rate
        print(f"  {label:<28} {rate:8.0f} env-steps/s  ({ms_per_step:.2f} ms per vector step)")
    print(
        f"  {'ratio ours/theirs':<28} {ours / theirs:8.2f}  "
        f"(per round {round_ratios.min():.2f}-{round_ratios.max():.2f})"
    )


if __name__ == "__main__":
    main()
