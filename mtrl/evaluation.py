"""Multi-task evaluation: two named protocols, success counted at any step of an episode.

`all-goals` (mtrl's default; metrics `eval/…`): every goal of every task once, deterministic actions
tanh(mean). The eval env is built with `goal_sampling="sequential"` and `E` envs per task, so env `j` of a
task plays goals `j, j+E, j+2E, ...`; `goals_per_task / E` episodes per env cover each goal exactly once.

`moore` (the MOORE authors' `run_metaworld_sac_mt.py`; metrics `eval_moore/…`): `n` episodes per task
(their `--n_episodes_test 10`), each on a goal drawn uniformly at reset (`sample_task_per_episode`), with
actions sampled from the policy (mushroom-rl's SAC policy samples in evaluation too). The eval env is
built with `goal_sampling="random"`. On MiniGrid (the authors' `run_minigrid_ppo_mt.py`, `--n_episodes_test
16`) the headline number of this protocol is the undiscounted return, `eval_moore/return`.

Procedural envs (`spec.procedural`: MiniGrid draws a new layout at every reset) have no goal set to cover:
`all-goals` there plays `eval_goals_per_task` fresh episodes per task with the greedy action.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mtrl.types import Agent, Env, EnvSpec, PyTree


def episodes_per_env(spec: EnvSpec, goals: int) -> int:
    """How many episodes each eval env plays to cover `goals` goals per task once."""
    most = goals if spec.procedural else spec.goals_per_task
    if goals < 1 or goals > most or goals % spec.envs_per_task:
        raise ValueError(
            f"eval goals per task must be a multiple of the eval envs per task "
            f"({spec.envs_per_task}) in 1..{most}, got {goals}"
        )
    return goals // spec.envs_per_task


def final_goals(spec: EnvSpec, eval_goals_per_task: int) -> int:
    """Goals per task of the final all-goals evaluation: every goal, or on procedural envs (no goal set)
    the periodic evaluations' count."""
    return eval_goals_per_task if spec.procedural else spec.goals_per_task


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
    on_round: Callable[[jax.Array], None] | None = None,
) -> jax.Array:
    """Play `num_episodes` episodes in every env; returns success flags `[envs, episodes]` (see
    `run_scored_episodes`)."""
    return run_scored_episodes(env, agent, agent_state, key, num_episodes, deterministic, on_round)[0]


def run_scored_episodes(
    env: Env,
    agent: Agent,
    agent_state: PyTree,
    key: jax.Array,
    num_episodes: int,
    deterministic: bool = True,
    on_round: Callable[[jax.Array], None] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Play `num_episodes` episodes in every env; returns success flags and undiscounted returns, both
    `[envs, episodes]`.

    `deterministic` (a Python bool) acts with the policy's greedy action (tanh(mean), argmax); False
    samples from the policy, a fresh key per step. Episodes may end early (terminations): the loop runs
    `num_episodes` rounds of `episode_length` steps, enough for the longest, and drops the episodes beyond.
    `on_round`, if given, is called on the host with the number of rounds done after each round (a
    `jax.debug.callback`: how a progress bar follows an evaluation that runs as one compiled program).
    """
    spec = env.spec
    reset_key, key = jax.random.split(key)
    env_state, step = env.reset(reset_key)
    n = spec.num_envs
    init = (
        env_state,
        step,
        jnp.zeros(n, bool),
        jnp.zeros(n, jnp.float32),
        jnp.zeros(n, jnp.int32),
        jnp.zeros((n, num_episodes), bool),
        jnp.zeros((n, num_episodes), jnp.float32),
        key,
    )

    def body(carry, _):
        env_state, step, succeeded, total, episode, successes, returns, key = carry
        key, act_key = jax.random.split(key)
        action = agent.act(agent_state, step.obs, step.task_id, act_key, deterministic)
        env_state, step = env.step(env_state, action)
        succeeded = succeeded | step.success
        total = total + step.reward
        ended = step.terminated | step.truncated
        rows = jnp.arange(n)
        column = jnp.where(ended, episode, num_episodes)  # out of range → dropped
        successes = successes.at[rows, column].set(succeeded, mode="drop")
        returns = returns.at[rows, column].set(total, mode="drop")
        carry = (env_state, step, succeeded & ~ended, jnp.where(ended, 0.0, total), episode + ended)
        return (*carry, successes, returns, key), None

    def episode_round(carry, index):
        carry, _ = jax.lax.scan(body, carry, length=spec.episode_length)
        if on_round is not None:
            jax.debug.callback(on_round, index + 1)
        return carry, None

    carry, _ = jax.lax.scan(episode_round, init, jnp.arange(num_episodes))
    return carry[-3], carry[-2]


def round_reporter(
    report: Callable[[str, int, int], None] | None, protocol: str, rounds: int
) -> Callable[[jax.Array], None] | None:
    """`run_episodes`' `on_round` that tells `report` how far the `protocol` evaluation is (with
    vmapped seeds the callback sees every seed's count: the furthest is shown)."""
    if report is None:
        return None
    return lambda done: report(protocol, int(np.max(done)), rounds)


def success_per_task(spec: EnvSpec, successes: np.ndarray) -> dict[str, float]:
    """Mean success of each task from `[..., envs, episodes]` flags (averaging any leading seed axis)."""
    return mean_per_task(spec, successes)


def mean_per_task(spec: EnvSpec, values: np.ndarray) -> dict[str, float]:
    """Mean of `[..., envs, episodes]` values per task (averaging any leading seed axis)."""
    per_task = np.asarray(values, np.float64).reshape(*values.shape[:-2], spec.num_tasks, -1)
    means = per_task.mean(axis=-1).reshape(-1, spec.num_tasks).mean(axis=0)
    return dict(zip(spec.task_names, means.tolist(), strict=True))


def eval_metrics(
    spec: EnvSpec, successes: np.ndarray, prefix: str = "eval", returns: np.ndarray | None = None
) -> dict[str, float]:
    """`<prefix>/success` (mean over tasks) and `<prefix>/<task>/success`; prefix `eval` for the all-goals
    protocol (the metric names used everywhere), `eval_moore` for the MOORE authors' protocol. With
    `returns`, also `<prefix>/return` and `<prefix>/<task>/return` (the training loops always pass them;
    MiniGrid's headline metric, and on Meta-World a curve that moves before success does)."""
    metrics: dict[str, float] = {}
    for name, values in (("success", successes), ("return", returns)):
        if values is None:
            continue
        values = np.asarray(values)
        per_task = mean_per_task(spec, values)
        metrics[f"{prefix}/{name}"] = float(np.mean(list(per_task.values())))
        metrics.update({f"{prefix}/{task}/{name}": value for task, value in per_task.items()})
        if values.ndim == 3:  # a leading seed axis: each seed's own numbers, for statistics across seeds
            for seed, seed_values in enumerate(values):
                metrics[f"{prefix}/seed{seed}/{name}"] = float(seed_values.astype(np.float64).mean())
                for task, value in mean_per_task(spec, seed_values).items():
                    metrics[f"{prefix}/seed{seed}/{task}/{name}"] = value
    return metrics


def over_seeds(play: Callable, env: Env) -> Callable:
    """`play(state, key)` over a leading seed axis: vmapped where `env` vmaps over seeds, otherwise one seed
    after another (`lax.map`), as host-stepped evaluation envs built for one seed need (a vmapped native
    env holds a copy of its batch per seed: too many envs for a large evaluation)."""
    if env.vmappable:
        return jax.vmap(play)
    return lambda state, key: jax.lax.map(lambda args: play(*args), (state, key))
