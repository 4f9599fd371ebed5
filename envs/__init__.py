"""Batched functional environments: `make(name, ...)` is the one entry point.

Every env returned here has `.spec` (an `EnvSpec`), `.reset(key)` and `.step(state, action)`, traceable by
`jax.jit` and `lax.scan`, with the same-step auto-reset documented on `mtrl.types.TimeStep`.
"""

from __future__ import annotations

import dataclasses

from .toy import TOY_ML, PointMass, PointMassConfig

TOY_ENVS = ("toy", "toy-ml")
METAWORLD_BENCHMARKS = ("MT1", "MT10", "MT25", "MT50", "ML1", "ML10", "ML25", "ML45")
MINIGRID_BENCHMARKS = (
    "MiniGrid-MT1",
    "MiniGrid-MT3",
    "MiniGrid-MT5",
    "MiniGrid-MT7",
    "MiniGrid-TL3-5",
    "MiniGrid-TL5-7",
)
ENV_NAMES = TOY_ENVS + METAWORLD_BENCHMARKS + MINIGRID_BENCHMARKS
BACKENDS = {
    "toy": ("jax",),
    "toy-ml": ("jax",),
    **{b: ("native", "official") for b in METAWORLD_BENCHMARKS},
    **{b: ("jax", "farama") for b in MINIGRID_BENCHMARKS},
}
GOAL_SAMPLING = ("random", "sequential")


def make(
    name: str,
    *,
    task: str | None = None,
    split: str = "train",
    backend: str | None = None,
    seed: int = 0,
    envs_per_task: int = 1,
    goal_sampling: str = "random",
    episodes_per_goal: int = 1,
    num_tasks: int | None = None,
    reward_version: str = "v2",
    max_episode_steps: int | None = None,
    seeds: int = 1,
):
    """Build the batched env `name` on `backend` (default: the benchmark's first backend).

    Args:
        name: "toy", "toy-ml" (its meta-RL variant: goals hidden, train/test goals), a Meta-World
            benchmark (MT1, MT10, MT25, MT50, ML1, ML10, ML25, ML45) or a MiniGrid one (MiniGrid-MT1,
            MiniGrid-MT3, MiniGrid-MT5, MiniGrid-MT7; see `envs.minigrid`).
        task: the Meta-World task for MT1/ML1, e.g. "reach-v3"; the MiniGrid task for MiniGrid-MT1, e.g.
            "LavaGapS7".
        split: "train" or "test" for ML benchmarks and toy-ml (held-out tasks or goals are the test split).
        backend: for Meta-World "native" (batched host physics, observations and rewards in JAX; the
            default, parity-tested against official) or "official" (metaworld's own envs via io_callback,
            the reference; the default until 2026-12-05, and the only one with reward_version "v1");
            "jax" for toy envs; for MiniGrid "jax" (the port, the default) or "farama" (Farama's envs via
            io_callback, the port's reference).
        seed: fixes the goal configurations; reset keys then drive every random choice.
        envs_per_task: parallel envs per task; envs are task-major (env i runs task i // envs_per_task).
        goal_sampling: "random" (a uniform goal at every reset, the MT training protocol) or "sequential"
            (env j visits goals j, j+E, j+2E, ...: every goal once in goals_per_task / E episodes).
        episodes_per_goal: consecutive episodes each env plays on one goal before the next draw (meta-RL:
            N adaptation + M scored episodes, or one RL² trial); goal order as above, per block of episodes.
        num_tasks: number of tasks of the toy env (ignored by Meta-World benchmarks).
        reward_version: Meta-World reward function version: "v2" (metaworld's default; both backends) or
            "v1" (official backend only). The toy env has one reward and accepts only "v2".
        max_episode_steps: the episode horizon; None keeps the env's own (Meta-World: 500, at most 500;
            toy: its config's). Episodes truncate after it, never terminate.
        seeds: how many vmapped seeds will step the env. Pure-JAX envs vmap over any number and ignore it;
            the native Meta-World backend builds its host batch once per seed (then `vmappable`); the other
            host backends ignore it (not vmappable: seeds play one after another).
    """
    if name not in ENV_NAMES:
        raise ValueError(f"unknown env {name!r}; valid names: {', '.join(ENV_NAMES)}")
    backend = backend or BACKENDS[name][0]
    if backend not in BACKENDS[name]:
        raise ValueError(
            f"unknown backend {backend!r} for {name}; valid backends: {', '.join(BACKENDS[name])}"
        )
    if goal_sampling not in GOAL_SAMPLING:
        raise ValueError(
            f"unknown goal_sampling {goal_sampling!r}; valid choices: {', '.join(GOAL_SAMPLING)}"
        )
    if envs_per_task < 1:
        raise ValueError(f"envs_per_task must be >= 1, got {envs_per_task}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if name in MINIGRID_BENCHMARKS:
        return _make_minigrid(
            name,
            task,
            backend,
            envs_per_task,
            goal_sampling,
            episodes_per_goal,
            split,
            reward_version,
            max_episode_steps,
        )
    if name in TOY_ENVS:
        if reward_version != "v2":
            raise ValueError(f"reward_version {reward_version!r} is not available on {name}; valid: v2")
        config = TOY_ML if name == "toy-ml" else PointMassConfig()
        if num_tasks is not None:
            config = dataclasses.replace(config, num_tasks=num_tasks)
        if max_episode_steps is not None:
            if not isinstance(max_episode_steps, int) or max_episode_steps < 1:
                raise ValueError(f"max_episode_steps must be an int >= 1, got {max_episode_steps!r}")
            config = dataclasses.replace(config, episode_length=max_episode_steps)
        return PointMass(
            config,
            seed=seed,
            envs_per_task=envs_per_task,
            goal_sampling=goal_sampling,
            episodes_per_goal=episodes_per_goal,
            split=split,
        )
    from .metaworld import make_metaworld  # imports metaworld and mujoco only when asked for

    return make_metaworld(
        name,
        task=task,
        split=split,
        seed=seed,
        envs_per_task=envs_per_task,
        goal_sampling=goal_sampling,
        episodes_per_goal=episodes_per_goal,
        backend=backend,
        reward_version=reward_version,
        max_episode_steps=max_episode_steps,
        seeds=seeds,
    )


def _make_minigrid(
    name,
    task,
    backend,
    envs_per_task,
    goal_sampling,
    episodes_per_goal,
    split,
    reward_version,
    max_episode_steps,
):
    """MiniGrid has no goal sets, splits, reward versions or horizon switch: refuse them by name."""
    from .minigrid import make_minigrid

    if split != "train":
        raise ValueError(f"{name} has no {split!r} split; valid: train")
    if episodes_per_goal != 1:
        raise ValueError(
            f"{name} draws a new layout at every reset; episodes_per_goal must be 1, got {episodes_per_goal}"
        )
    if reward_version != "v2":
        raise ValueError(
            f"reward_version {reward_version!r} is not available on {name}; valid: v2 (minigrid's own)"
        )
    if max_episode_steps is not None:
        raise ValueError(
            f"{name} keeps each task's own minigrid horizon (max_steps); max_episode_steps must be None, "
            f"got {max_episode_steps}"
        )
    del goal_sampling  # every reset draws a fresh layout, whatever the sampling
    return make_minigrid(name, task=task, backend=backend, envs_per_task=envs_per_task)


__all__ = ["ENV_NAMES", "TOY_ML", "PointMass", "PointMassConfig", "make"]
