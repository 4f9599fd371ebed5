"""Meta-World benchmarks (MT1/10/25/50, ML1/10/25/45) as batched functional envs.

`make_metaworld` checks its arguments, resolves the benchmark split to tasks and goal
configurations (`benchmarks.py`, shared by every backend) and builds one of two backends:
`official` (`official.py`: metaworld's own envs, stepped on the host by one ordered `io_callback`
per vector step) or `native` (`native/`: the same models and resets, but the host call does physics
only and observations, rewards and success are computed in JAX for the whole batch).
"""

from __future__ import annotations

from ..goals import check_episodes_per_goal, next_goal_indices
from .benchmarks import (
    BENCHMARKS,
    GOAL_SAMPLING,
    SPLITS,
    TASK_NAMES,
    BenchmarkTasks,
    check_args,
    check_max_episode_steps,
    load_benchmark,
    task_names,
)
from .official import OfficialEnv, OfficialState

METAWORLD_BACKENDS = ("native", "official")  # the first is the default
REWARD_VERSIONS = {"official": ("v2", "v1"), "native": ("v2",)}  # metaworld's default is v2


def make_metaworld(
    benchmark: str,
    *,
    task: str | None = None,
    split: str = "train",
    seed: int = 0,
    envs_per_task: int = 1,
    goal_sampling: str = "random",
    episodes_per_goal: int = 1,
    backend: str = "native",
    threads: int | None = None,
    reward_version: str = "v2",
    max_episode_steps: int | None = None,
    seeds: int = 1,
):
    """Build a batched Meta-World benchmark on `backend` ("native", the default, or "official").

    Args:
        benchmark: one of `BENCHMARKS`.
        task: the task of MT1/ML1, e.g. "reach-v3" (must be None for the others).
        split: "train" or "test" (the held-out tasks) for ML benchmarks; MT benchmarks have
            "train" only.
        seed: goes to metaworld's benchmark constructor, which fixes the 50 goal configurations
            per task, and seeds the envs as metaworld does; the reset key drives every goal choice.
        envs_per_task: parallel envs per task, task-major (env i runs task i // envs_per_task).
        goal_sampling: "random" (uniform goal at every reset, the MT training protocol) or
            "sequential" (env j of a task takes goals j, j+E, j+2E, ... mod 50 on its successive
            episodes, E = envs_per_task).
        episodes_per_goal: consecutive episodes each env plays on one goal before the next draw
            (meta-RL: adaptation plus scored episodes, or one RL² trial).
        backend: "native" (the fast path, parity-tested against official) or "official" (metaworld's own
            envs: the reference).
        threads: physics worker threads of the native backend (default: one per core, at most 8).
        reward_version: metaworld's reward function version, "v2" (default) or "v1" (official only).
        max_episode_steps: the horizon, 1..500: episodes truncate after it and success counts at any
            step within it. None: metaworld's 500 (the Meta-World paper); the MOORE and CARE authors
            use 150.
        seeds: the vmapped seeds the env will serve. The native backend builds its host batch once per
            seed and is then `vmappable` over exactly that many (one host call steps them all); the
            official backend cannot vmap and ignores it (its callers play seeds one after another).

    Raises:
        ValueError: on an unknown benchmark, task, split, goal_sampling or backend, envs_per_task < 1,
            or (native) a task without a native port.
    """
    check_args(benchmark, task=task, split=split, goal_sampling=goal_sampling, envs_per_task=envs_per_task)
    check_episodes_per_goal(episodes_per_goal)
    episode_length = check_max_episode_steps(max_episode_steps)
    if backend not in METAWORLD_BACKENDS:
        raise ValueError(f"unknown Meta-World backend {backend!r}; valid: {', '.join(METAWORLD_BACKENDS)}")
    if reward_version not in REWARD_VERSIONS[backend]:
        elsewhere = [b for b in METAWORLD_BACKENDS if reward_version in REWARD_VERSIONS[b]]
        raise ValueError(
            f"reward_version {reward_version!r} is not available on the {backend} backend; "
            f"valid: {', '.join(REWARD_VERSIONS[backend])}"
            + "".join(f" (the {b} backend has it)" for b in elsewhere[:1])
        )
    if backend == "native":
        from .native import NativeEnv, get_port

        for name in task_names(benchmark, task=task, split=split):
            get_port(name)  # fails fast, before the benchmark is built
        tasks = load_benchmark(benchmark, task=task, split=split, seed=seed)
        return NativeEnv(
            tasks,
            envs_per_task=envs_per_task,
            goal_sampling=goal_sampling,
            episodes_per_goal=episodes_per_goal,
            seed=seed,
            threads=threads,
            episode_length=episode_length,
            seeds=seeds,
        )
    tasks = load_benchmark(benchmark, task=task, split=split, seed=seed)
    return OfficialEnv(
        tasks,
        envs_per_task=envs_per_task,
        goal_sampling=goal_sampling,
        episodes_per_goal=episodes_per_goal,
        seed=seed,
        reward_version=reward_version,
        episode_length=episode_length,
    )


__all__ = [
    "BENCHMARKS",
    "GOAL_SAMPLING",
    "METAWORLD_BACKENDS",
    "REWARD_VERSIONS",
    "SPLITS",
    "TASK_NAMES",
    "BenchmarkTasks",
    "OfficialEnv",
    "OfficialState",
    "make_metaworld",
    "next_goal_indices",
    "task_names",
]
