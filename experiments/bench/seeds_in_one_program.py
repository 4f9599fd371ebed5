"""Seeds in one program: what N vmapped seeds cost against one, on Meta-World's native backend and on toy.

    python experiments/bench/seeds_in_one_program.py [--small] [--seeds 8] [--iterations 10] [--rounds 3]

At MT10 shapes (10 tasks, one env per task) with small networks (MT-SAC, 64×64), one training iteration is
25 vector steps and 25 updates of batch 32 per task, the loop's `train` program (`training.make_programs`).
For each env the 1-seed and the N-seed programs are built and compiled, the replay filled past one batch,
then `--iterations` iterations of each are timed, alternating, `--rounds` times (the median counts). Printed:
milliseconds per iteration, the N-seed iteration's cost relative to the 1-seed one, and the speed-up over
training the N seeds one after another (N × one seed's time / the N-seed time). On native, the host steps
every seed's copy of the batch in one call on its thread pool; on toy everything is one XLA program.

`--small`: 2 seeds, 2 iterations, 1 round, one task (a smoke run; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
from mtrl.agents import mt_sac

from mtrl import training
from mtrl.app import wiring
from mtrl.app.config import EnvConfig, TrainConfig
from mtrl.logger import WandbConfig

ENVS = {
    "native": EnvConfig(name="MT10", envs_per_task=1, backend="native", max_episode_steps=150),
    "toy": EnvConfig(name="toy", toy_num_tasks=10, envs_per_task=1),
}
SMALL_ENVS = {  # --small: one task each, so that the smoke run compiles small programs
    "native": EnvConfig(name="MT1", task="reach-v3", backend="native", max_episode_steps=150),
    "toy": EnvConfig(name="toy", toy_num_tasks=1, envs_per_task=1),
}
LOOP = training.LoopConfig(  # evaluation is not timed: its env is kept to one env per task
    steps_per_iteration=25,
    batch_per_task=32,
    replay_per_task=2_000,
    warmup_steps_per_task=50,
    eval_envs_per_task=1,
)


class Timed:
    """One env's training program for `seeds` seeds, compiled, with a replay past one batch."""

    def __init__(self, env: EnvConfig, seeds: int):
        config = TrainConfig(
            agent=mt_sac.Config(hidden_sizes=(64, 64)),
            env=env,
            loop=LOOP,
            num_seeds=seeds,
            wandb=WandbConfig(mode="disabled"),
        )
        self.train_env, eval_env = wiring.make_envs(config)
        agent = wiring.make_agent(config)
        programs = training.make_programs(self.train_env, eval_env, agent, LOOP, seeds)
        keys = jax.random.split(jax.random.key(0), seeds) if seeds > 1 else jax.random.key(0)
        state = programs.init(keys)
        for _ in range(2):  # 2 × 25 rows per task: past one batch of 32
            state = programs.warmup(state)
        self.state, _ = jax.block_until_ready(programs.train(state))  # compiles
        self.train = programs.train

    def seconds_per_iteration(self, iterations: int) -> float:
        start = time.perf_counter()
        for _ in range(iterations):
            self.state, metrics = self.train(self.state)
        jax.block_until_ready(metrics)
        return (time.perf_counter() - start) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="2 seeds, 2 iterations, 1 round, 1 task")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    seeds, iterations, rounds = (2, 2, 1) if args.small else (args.seeds, args.iterations, args.rounds)
    print(
        f"seeds in one program: mt_sac 64x64, 10 tasks x 1 env, {LOOP.steps_per_iteration} vector steps and "
        f"{LOOP.steps_per_iteration} updates (batch {LOOP.batch_per_task} per task) per iteration; "
        f"{iterations} iterations x {rounds} rounds, median"
    )
    print(f"{'env':<8}{'seeds':>6}{'ms/iteration':>14}{'vs 1 seed':>11}{'speed-up':>10}")
    for env, env_config in (SMALL_ENVS if args.small else ENVS).items():
        programs = {n: Timed(env_config, n) for n in (1, seeds)}
        times = {n: [] for n in programs}
        for _ in range(rounds):
            for n, timed in programs.items():
                times[n].append(timed.seconds_per_iteration(iterations))
        one, many = (statistics.median(times[n]) for n in (1, seeds))
        print(f"{env:<8}{1:>6}{one * 1e3:>14.1f}{1.0:>10.2f}x{1.0:>9.2f}x")
        print(f"{env:<8}{seeds:>6}{many * 1e3:>14.1f}{many / one:>10.2f}x{seeds * one / many:>9.2f}x")
        for timed in programs.values():
            timed.train_env.close()
    print(
        f"vs 1 seed: the {seeds}-seed iteration's time over the 1-seed one, measured in the same run; "
        f"speed-up: {seeds} seeds one after another over {seeds} seeds in one program"
    )


if __name__ == "__main__":
    main()
