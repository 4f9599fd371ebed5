"""Env-steps/s of the JAX MiniGrid port against Farama's own envs, measured in the same run.

    python experiments/bench/minigrid_throughput.py                  # MT7, 1/16/128 envs per task
    python experiments/bench/minigrid_throughput.py --name MiniGrid-MT3 --envs-per-task 1 64 --steps 500
    python experiments/bench/minigrid_throughput.py --small   # quick check: MT3, 1 env per task, 20 steps

Both sides take uniformly random actions and reset at every episode end. Farama: the envs the MOORE authors
build (`ImgObsWrapper(gymnasium.make(id))`), stepped one after another in Python, as their `Core` does. Port:
`envs.make(name)` stepped in one jitted `lax.scan` (compile time reported apart). The ratio is what counts:
absolute numbers move with the machine's load.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from mtrl import envs


def farama_steps_per_second(task_ids: tuple[str, ...], steps: int, seed: int = 0) -> float:
    from minigrid.wrappers import ImgObsWrapper

    tasks = [ImgObsWrapper(gym.make(task)) for task in task_ids]
    for i, env in enumerate(tasks):
        env.reset(seed=seed + i)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(steps):
        for env in tasks:
            _, _, terminated, truncated, _ = env.step(int(rng.integers(7)))
            if terminated or truncated:
                env.reset()
    return steps * len(tasks) / (time.perf_counter() - start)


def port_steps_per_second(name: str, envs_per_task: int, steps: int) -> tuple[float, float]:
    """(env-steps/s after compilation, compile + first run seconds)."""
    env = envs.make(name, envs_per_task=envs_per_task)
    n = env.spec.num_envs

    @jax.jit
    def run(key):
        state, _ = env.reset(key)

        def body(carry, _):
            state, key = carry
            key, act_key = jax.random.split(key)
            state, step = env.step(state, jax.random.randint(act_key, (n,), 0, 7))
            return (state, key), step.reward.sum()

        _, rewards = jax.lax.scan(body, (state, key), length=steps)
        return rewards.sum()

    start = time.perf_counter()
    jax.block_until_ready(run(jax.random.key(0)))
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(run(jax.random.key(1)))
    return steps * n / (time.perf_counter() - start), compile_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="MiniGrid-MT3, 1 env per task, 20 steps")
    parser.add_argument("--name", default="MiniGrid-MT7", choices=envs.MINIGRID_BENCHMARKS[1:])
    parser.add_argument("--envs-per-task", type=int, nargs="+", default=[1, 16, 128])
    parser.add_argument("--steps", type=int, default=2000, help="vector steps per measurement")
    parser.add_argument("--farama-steps", type=int, default=2000, help="steps per Farama env")
    args = parser.parse_args(argv)
    if args.small:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(name="MiniGrid-MT3", envs_per_task=[1], steps=20, farama_steps=20)
        args = parser.parse_args(argv)

    task_ids = envs.make(args.name).spec.task_names
    farama = farama_steps_per_second(task_ids, args.farama_steps)
    print(f"{args.name} ({len(task_ids)} tasks), devices {jax.devices()}")
    print(f"farama (python loop, 1 env per task): {farama:12,.0f} env-steps/s   1.00x")
    for per_task in args.envs_per_task:
        rate, compile_s = port_steps_per_second(args.name, per_task, args.steps)
        print(
            f"port, {per_task:4d} env(s) per task:          {rate:12,.0f} env-steps/s "
            f"{rate / farama:7.2f}x   (compile {compile_s:.1f} s)"
        )


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
