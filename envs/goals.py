"""Which goal configuration each env plays next: shared by every backend so they agree draw for draw."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Int


def next_goal_indices(
    goal_sampling: str,
    key: jax.Array,
    episodes: Int[Array, " envs"],
    envs_per_task: int,
    goals_per_task: int,
    episodes_per_goal: int = 1,
) -> Int[Array, " envs"]:
    """Goal index of each env's episode number `episodes` (counted from 0 at reset).

    An env keeps a goal for `episodes_per_goal` (K) consecutive episodes, so episodes k·K … k·K + K − 1
    form goal block k (meta-RL: adaptation and scored episodes, or an RL² trial, on one goal).
    "sequential": env slot j of a task (j = env index mod E, E = envs_per_task) plays goals j, j+E,
    j+2E, ... (mod goals_per_task) in its successive blocks, so a task's E envs visit each goal once in
    goals_per_task / E blocks (when E divides it). "random": uniform over the task's goals, from `key`.
    """
    block = episodes // episodes_per_goal
    if goal_sampling == "sequential":
        slot = jnp.arange(episodes.shape[0], dtype=jnp.int32) % envs_per_task
        return (slot + block * envs_per_task) % goals_per_task
    return jax.random.randint(key, episodes.shape, 0, goals_per_task, dtype=jnp.int32)


def goals_after_step(
    goal_sampling: str,
    key: jax.Array,
    episodes: Int[Array, " envs"],
    ended: Bool[Array, " envs"],
    goal_index: Int[Array, " envs"],
    envs_per_task: int,
    goals_per_task: int,
    episodes_per_goal: int = 1,
) -> Int[Array, " envs"]:
    """The goal each env plays after a step: a new draw where an episode ended and the next episode
    (number `episodes`, already counted) starts a goal block; the current goal everywhere else."""
    starts_block = ended & (episodes % episodes_per_goal == 0)
    drawn = next_goal_indices(goal_sampling, key, episodes, envs_per_task, goals_per_task, episodes_per_goal)
    return jnp.where(starts_block, drawn, goal_index)


def check_episodes_per_goal(episodes_per_goal: int) -> None:
    if not isinstance(episodes_per_goal, int) or episodes_per_goal < 1:
        raise ValueError(f"episodes_per_goal must be an int >= 1, got {episodes_per_goal!r}")
