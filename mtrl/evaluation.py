"""Multi-task evaluation: two named protocols, success counted at any step of an episode.

`all-goals` (mtrl's default; metrics `eval/…`): every goal of every task once, deterministic actions
tanh(mean). The eval env is built with `goal_sampling="sequential"` and `E` envs per task, so env `j` of a
task plays goals `j, j+E, j+2E, ...`; `goals_per_task / E` episodes per env cover each goal exactly once.

`moore` (the MOORE authors' `run_metaworld_sac_mt.py`; metrics `eval_moore/…`): `n` episodes per task
(their `--n_episodes_test 10`), each on a goal drawn uniformly at reset (`sample_task_per_episode`), with
actions sampled from the policy (mushroom-rl's SAC policy samples in evaluation too). The eval env is
built with `goal_sampling="random"`.
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


def sampled_episodes_per_env(spec: EnvSpec, episodes_per_task: int) -> int:
    """How many episodes each env plays for the `moore` protocol's `episodes_per_task`."""
    if episodes_per_task < 1 or episodes_per_task % spec.envs_per_task:
        raise ValueError(
            f"loop.moore_eval_episodes must be a positive multiple of the eval envs per task "
            f"({spec.envs_per_task}), got {episodes_per_task}"
        )
    return episodes_per_task // spec.envs_per_task


def run_episodes(
    env: Env,
    agent: Agent,
    agent_state: PyTree,
    key: jax.Array,
    num_episodes: int,
    deterministic: bool = True,
) -> jax.Array:
    """Play `num_episodes` episodes in every env; returns success flags `[envs, episodes]`.

    `deterministic` (a Python bool) acts with tanh(mean); False samples from the policy, a fresh key
    per step.
    """
    spec = env.spec
    reset_key, key = jax.random.split(key)
    env_state, step = env.reset(reset_key)
    init = (
        env_state,
        step,
        jnp.zeros(spec.num_envs, bool),
        jnp.zeros(spec.num_envs, jnp.int32),
        jnp.zeros((spec.num_envs, num_episodes), bool),
        key,
    )

    def body(carry, _):
        env_state, step, succeeded, episode, results, key = carry
        key, act_key = jax.random.split(key)
        action = agent.act(agent_state, step.obs, step.task_id, act_key, deterministic)
        env_state, step = env.step(env_state, action)
        succeeded = succeeded | step.success
        ended = step.terminated | step.truncated
        rows = jnp.arange(spec.num_envs)
        column = jnp.where(ended, episode, num_episodes)  # out of range → dropped
        results = results.at[rows, column].set(succeeded, mode="drop")
        return (env_state, step, succeeded & ~ended, episode + ended, results, key), None

    carry, _ = jax.lax.scan(body, init, length=num_episodes * spec.episode_length)
    return carry[-2]


def success_per_task(spec: EnvSpec, successes: np.ndarray) -> dict[str, float]:
    """Mean success of each task from `[..., envs, episodes]` flags (averaging any leading seed axis)."""
    per_task = np.asarray(successes, np.float64).reshape(*successes.shape[:-2], spec.num_tasks, -1)
    means = per_task.mean(axis=-1).reshape(-1, spec.num_tasks).mean(axis=0)
    return dict(zip(spec.task_names, means.tolist(), strict=True))


def eval_metrics(spec: EnvSpec, successes: np.ndarray, prefix: str = "eval") -> dict[str, float]:
    """`<prefix>/success` (mean over tasks) and `<prefix>/<task>/success`; prefix `eval` for the all-goals
    protocol (the metric names used everywhere), `eval_moore` for the MOORE authors' protocol."""
    per_task = success_per_task(spec, successes)
    metrics = {f"{prefix}/success": float(np.mean(list(per_task.values())))}
    metrics.update({f"{prefix}/{task}/success": value for task, value in per_task.items()})
    successes = np.asarray(successes)
    if successes.ndim == 3:  # a leading seed axis: each seed's own numbers, for statistics across seeds
        for seed, flags in enumerate(successes):
            metrics[f"{prefix}/seed{seed}/success"] = float(flags.mean())
            for task, value in success_per_task(spec, flags).items():
                metrics[f"{prefix}/seed{seed}/{task}/success"] = value
    return metrics
