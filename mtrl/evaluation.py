"""Multi-task evaluation (design §6): every goal of every task once, deterministic, success at any step.

The eval env is built with `goal_sampling="sequential"` and `E` envs per task, so env `j` of a task plays
goals `j, j+E, j+2E, ...`; `goals_per_task / E` episodes per env then cover each goal exactly once.
(metaworld's own `evaluation` helper samples goals with replacement instead; we visit every goal once.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mtrl.types import Agent, Env, EnvSpec, PyTree


def episodes_per_env(spec: EnvSpec, goals: int) -> int:
    """How many episodes each eval env plays to cover `goals` goals per task once."""
    if goals < 1 or goals > spec.goals_per_task or goals % spec.envs_per_task:
        raise ValueError(
            f"eval goals per task must be a multiple of the eval envs per task "
            f"({spec.envs_per_task}) in 1..{spec.goals_per_task}, got {goals}"
        )
    return goals // spec.envs_per_task


def run_episodes(env: Env, agent: Agent, agent_state: PyTree, key: jax.Array, num_episodes: int) -> jax.Array:
    """Play `num_episodes` deterministic episodes in every env; returns success flags `[envs, episodes]`."""
    spec = env.spec
    env_state, step = env.reset(key)
    init = (
        env_state,
        step,
        jnp.zeros(spec.num_envs, bool),
        jnp.zeros(spec.num_envs, jnp.int32),
        jnp.zeros((spec.num_envs, num_episodes), bool),
    )

    def body(carry, _):
        env_state, step, succeeded, episode, results = carry
        action = agent.act(agent_state, step.obs, step.task_id, key, True)
        env_state, step = env.step(env_state, action)
        succeeded = succeeded | step.success
        ended = step.terminated | step.truncated
        rows = jnp.arange(spec.num_envs)
        column = jnp.where(ended, episode, num_episodes)  # out of range → dropped
        results = results.at[rows, column].set(succeeded, mode="drop")
        return (env_state, step, succeeded & ~ended, episode + ended, results), None

    carry, _ = jax.lax.scan(body, init, length=num_episodes * spec.episode_length)
    return carry[-1]


def success_per_task(spec: EnvSpec, successes: np.ndarray) -> dict[str, float]:
    """Mean success of each task from `[..., envs, episodes]` flags (averaging any leading seed axis)."""
    per_task = np.asarray(successes, np.float64).reshape(*successes.shape[:-2], spec.num_tasks, -1)
    means = per_task.mean(axis=-1).reshape(-1, spec.num_tasks).mean(axis=0)
    return dict(zip(spec.task_names, means.tolist(), strict=True))


def eval_metrics(spec: EnvSpec, successes: np.ndarray) -> dict[str, float]:
    """`eval/success` (mean over tasks) and `eval/<task>/success`, the metric names used everywhere."""
    per_task = success_per_task(spec, successes)
    metrics = {"eval/success": float(np.mean(list(per_task.values())))}
    metrics.update({f"eval/{task}/success": value for task, value in per_task.items()})
    successes = np.asarray(successes)
    if successes.ndim == 3:  # a leading seed axis: each seed's own numbers, for statistics across seeds
        for seed, flags in enumerate(successes):
            metrics[f"eval/seed{seed}/success"] = float(flags.mean())
            for task, value in success_per_task(spec, flags).items():
                metrics[f"eval/seed{seed}/{task}/success"] = value
    return metrics
