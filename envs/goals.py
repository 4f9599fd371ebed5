"""Which goal configuration each env plays next: shared by every backend so they agree draw for draw."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int


def next_goal_indices(
    goal_sampling: str,
    key: jax.Array,
    episodes: Int[Array, " envs"],
    envs_per_task: int,
    goals_per_task: int,
) -> Int[Array, " envs"]:
    """Goal index of each env's next episode: uniform draws, or every goal once in turn.

    "sequential": env slot j of a task (j = env index mod E, E = envs_per_task) takes goals j, j+E,
    j+2E, ... (mod goals_per_task) on its successive episodes, so a task's E envs visit each goal
    once in goals_per_task / E episodes (when E divides it). "random": uniform over the task's
    goals, from `key`.
    """
    if goal_sampling == "sequential":
        slot = jnp.arange(episodes.shape[0], dtype=jnp.int32) % envs_per_task
        return (slot + episodes * envs_per_task) % goals_per_task
    return jax.random.randint(key, episodes.shape, 0, goals_per_task, dtype=jnp.int32)
