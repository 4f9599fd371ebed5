"""Env throughput on MT10: metaworld's own sync vector env vs our backends, in a jitted scan and per call.

Why: the official backend adds one ordered io_callback per vector step around metaworld's own stepping, and
the native backend replaces metaworld's Python with batched host physics and JAX observations and rewards.
Two ways of stepping them are measured: inside one jitted `lax.scan` (how training runs) and a Python loop
calling `env.step` once per vector step (what a gymnasium user writes first; each call runs one compiled
program). All run 1 env per task with uniform random actions, auto-resetting at the 500-step truncation, in
alternating rounds so that every runner sees the same background load. `--small`, for a quick check: MT1
(reach-v3, one env) instead of MT10, 20 vector steps in 2 rounds (`--steps` and `--rounds` still apply).

Run: `python experiments/bench/env_throughput.py [--small] [--steps 1000] [--rounds 4]` (about a minute).
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

SMALL_TASK = "reach-v3"  # the one task of `--small` (MT1)


def metaworld_vector_env(benchmark: str, seed: int) -> gym.vector.VectorEnv:
    """metaworld's own sync vector env of `benchmark` (MT10/MT25/MT50), or of MT1 on `SMALL_TASK`."""
    if benchmark == "MT1":  # registered as a single env: gymnasium's sync vector env over one copy
        return gym.make_vec(
            "Meta-World/MT1",
            num_envs=1,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            env_name=SMALL_TASK,
            seed=seed,
            disable_env_checker=True,
        )
    return gym.make_vec(f"Meta-World/{benchmark}", vector_strategy="sync", seed=seed, use_one_hot=True)


def metaworld_runner(benchmark: str, seed: int) -> Callable[[int], float]:
    """Time n steps of metaworld's sync vector env (`gym.make_vec`), random actions."""
    envs = metaworld_vector_env(benchmark, seed)
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


def scan_runner(benchmark: str, backend: str, seed: int, num_steps: int) -> Callable[[], float]:
    """Time `num_steps` steps of one of our backends in a jitted lax.scan (compiled beforehand)."""
    task = SMALL_TASK if benchmark == "MT1" else None
    env = make_metaworld(benchmark, task=task, seed=seed, backend=backend)
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


def per_call_runner(benchmark: str, backend: str, seed: int, num_steps: int) -> Callable[[], float]:
    """Time `num_steps` calls of `env.step` from a Python loop, NumPy random actions, as a user writes it."""
    task = SMALL_TASK if benchmark == "MT1" else None
    env = make_metaworld(benchmark, task=task, seed=seed, backend=backend)
    state, _ = env.reset(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    shape = (env.spec.num_envs, env.spec.action_size)
    state, _ = env.step(state, rng.uniform(-1.0, 1.0, shape).astype(np.float32))  # compiles once

    def run() -> float:
        nonlocal state
        start = time.perf_counter()
        for _ in range(num_steps):
            state, step = env.step(state, rng.uniform(-1.0, 1.0, shape).astype(np.float32))
        jax.block_until_ready(step)
        return time.perf_counter() - start

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help=f"MT1 ({SMALL_TASK}), 20 steps, 2 rounds")
    parser.add_argument("--steps", type=int, default=1000, help="timed vector steps per runner")
    parser.add_argument("--rounds", type=int, default=4, help="alternating timed rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.small:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(steps=20, rounds=2)
        args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")

    benchmark = "MT1" if args.small else "MT10"
    chunk = args.steps // args.rounds
    theirs = metaworld_runner(benchmark, args.seed)
    runners = {
        "metaworld sync vector env": lambda: theirs(chunk),
        "official backend, jit+scan": scan_runner(benchmark, "official", args.seed, chunk),
        "official backend, per call": per_call_runner(benchmark, "official", args.seed, chunk),
        "native backend, jit+scan": scan_runner(benchmark, "native", args.seed, chunk),
        "native backend, per call": per_call_runner(benchmark, "native", args.seed, chunk),
    }
    num_envs = 1 if args.small else 10  # one env per task, in every measurement
    for run in runners.values():  # warm-up round, untimed
        run()
    # alternate rounds so that all see the same background load on a shared machine
    times = np.array([[run() for run in runners.values()] for _ in range(args.rounds)])  # [rounds, runners]
    rates = num_envs * chunk * args.rounds / times.sum(axis=0)
    round_ratios = times[:, :1] / times  # per round, metaworld's time over each runner's

    envs_label = f"{num_envs} env{'s' * (num_envs > 1)} (1 per task)"
    print(
        f"{benchmark}, {envs_label}, {args.rounds} alternating rounds of {chunk} vector "
        f"steps after a warm-up round; jax {jax.__version__} on {jax.default_backend()}, "
        f"{os.cpu_count()} CPU cores"
    )
    print(f"  {'runner':<28} {'env-steps/s':>11}  {'ms/vector step':>14}  ratio to metaworld (per round)")
    for i, (label, rate) in enumerate(zip(runners, rates, strict=True)):
        ms_per_step = 1e3 * num_envs / rate
        ratio = f"{rate / rates[0]:5.2f}x ({round_ratios[:, i].min():.2f}-{round_ratios[:, i].max():.2f})"
        print(f"  {label:<28} {rate:11.0f}  {ms_per_step:14.2f}  {ratio}")
    print("ratios are to metaworld's sync vector env measured in the same run")


if __name__ == "__main__":
    main()
