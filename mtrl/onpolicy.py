"""On-policy data: whole episodes collected in one jitted `lax.scan`, GAE and discounted returns.

The collected `Trajectory` is time-major, `[episodes, time, envs, ...]`: Meta-World episodes never terminate
and all truncate after `episode_length` steps, so every env's episodes line up and `time` runs over one
episode. Advantage and return estimators work on any time-major `[steps, ...]` block and take `terminated`
and `truncated` apart: a termination cuts the return, a truncation bootstraps from the value of the state
the episode was cut at (`next_obs`, the env's `final_obs`), as in Pardo et al., "Time Limits in
Reinforcement Learning" (ICML 2018, arXiv:1712.00378). Episodes can therefore also be flattened to
`[episodes * time, envs]` without mixing across their boundaries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Bool, Float, Int

from mtrl.types import Env, PyTree, TimeStep

PolicyFn = Callable[[PyTree, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
"""`(params, obs [envs, obs], task_id [envs], key) -> (action [envs, act], log_prob [envs])`."""


@struct.dataclass
class Trajectory:
    """Steps of every env; leading axes `[steps, envs]` from `collect_steps`, `[episodes, time, envs]` from
    `collect_episodes`. `next_obs` is the true next state (the env's `final_obs`), also at a truncation."""

    obs: Float[Array, "*batch obs"]
    action: Float[Array, "*batch act"]
    reward: Float[Array, "*batch"]
    terminated: Bool[Array, "*batch"]
    truncated: Bool[Array, "*batch"]
    success: Bool[Array, "*batch"]
    log_prob: Float[Array, "*batch"]
    """log π_old(a|s) of the behaviour policy, for importance ratios (PPO, TRPO)."""
    next_obs: Float[Array, "*batch obs"]
    task_id: Int[Array, "*batch"]

    @property
    def done(self) -> Bool[Array, "*batch"]:
        return self.terminated | self.truncated


class RolloutState(NamedTuple):
    """The scan carry: env state, the last time step and the key."""

    env: PyTree
    timestep: TimeStep
    key: jax.Array


def collect_step(
    env: Env, policy_fn: PolicyFn, params: PyTree, carry: RolloutState, _: None
) -> tuple[RolloutState, Trajectory]:
    """Act on the last observation, step every env, record the transition."""
    key, act_key = jax.random.split(carry.key)
    obs, task_id = carry.timestep.obs, carry.timestep.task_id
    action, log_prob = policy_fn(params, obs, task_id, act_key)
    env_state, step = env.step(carry.env, action)
    record = Trajectory(
        obs=obs,
        action=action,
        reward=step.reward,
        terminated=step.terminated,
        truncated=step.truncated,
        success=step.success,
        log_prob=log_prob,
        next_obs=step.final_obs,
        task_id=task_id,
    )
    return RolloutState(env_state, step, key), record


def collect_steps(
    env: Env, policy_fn: PolicyFn, params: PyTree, carry: RolloutState, num_steps: int
) -> tuple[RolloutState, Trajectory]:
    """`num_steps` vector steps from `carry` in one `lax.scan`; the trajectory is `[num_steps, envs, ...]`."""

    def body(state: RolloutState, x: None) -> tuple[RolloutState, Trajectory]:
        return collect_step(env, policy_fn, params, state, x)

    return jax.lax.scan(body, carry, length=num_steps)


def collect_episodes(
    env: Env,
    policy_fn: PolicyFn,
    params: PyTree,
    key: jax.Array,
    num_episodes: int,
    *,
    reset_key: jax.Array | None = None,
) -> Trajectory:
    """Reset every env and collect `num_episodes` whole episodes each: `[episodes, time, envs, ...]`.

    `key` is split into `(reset_key, rollout_key)`; a given `reset_key` replaces the first, so the same
    `reset_key` gives the same goals (and initial states) under fresh actions (MT-PPO holding its goals for
    several iterations). Each env's episodes follow one another through the env's same-step auto-reset; an
    env whose episodes are not all `spec.episode_length` steps long (one that terminates early) would
    misalign them, so use `collect_steps` and flat time for such envs.
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    default_reset_key, rollout_key = jax.random.split(key)
    env_state, timestep = env.reset(default_reset_key if reset_key is None else reset_key)
    length = env.spec.episode_length
    _, steps = collect_steps(
        env, policy_fn, params, RolloutState(env_state, timestep, rollout_key), num_episodes * length
    )
    return jax.tree.map(lambda x: x.reshape(num_episodes, length, *x.shape[1:]), steps)


def gae(
    rewards: Float[Array, "steps ..."],
    values: Float[Array, "steps ..."],
    next_values: Float[Array, "steps ..."],
    terminated: Bool[Array, "steps ..."],
    truncated: Bool[Array, "steps ..."],
    *,
    gamma: float,
    lam: float,
) -> Float[Array, "steps ..."]:
    """Generalised advantage estimates, Schulman et al. (ICLR 2016, arXiv:1506.02438), eq. 16.

    Â_t = Σ_l (γλ)^l δ_{t+l} within an episode, δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t), where
    V(s'_t) = `next_values[t]` is the value of the true next state. The sum stops at any episode end; at a
    truncation V(s'_t) still enters δ_t (bootstrap), at a termination it does not. The last step of the
    block is treated as a cut: its advantage is its own δ. λ = 0 gives δ_t, λ = 1 gives the bootstrapped
    discounted return minus V(s_t).
    """
    not_terminated = 1.0 - terminated.astype(rewards.dtype)
    continues = 1.0 - (terminated | truncated).astype(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def backward(next_advantage: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, cont = x
        advantage = delta + gamma * lam * cont * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True)
    return advantages


def discounted_returns(
    rewards: Float[Array, "steps ..."],
    terminated: Bool[Array, "steps ..."],
    truncated: Bool[Array, "steps ..."],
    *,
    gamma: float,
    next_values: Float[Array, "steps ..."] | None = None,
) -> Float[Array, "steps ..."]:
    """Discounted reward-to-go within each episode, G_t = r_t + γ G_{t+1}, cut at every episode end.

    Without `next_values` this is the Monte-Carlo return of the episode as collected (what garage fits its
    baselines to). With them, a truncated step (and the block's last step, unless terminated) bootstraps:
    G_t = r_t + γ V(s'_t); a terminated step has G_t = r_t.
    """
    rewards, terminated, truncated = jnp.asarray(rewards), jnp.asarray(terminated), jnp.asarray(truncated)
    dtype = rewards.dtype
    continues = 1.0 - (terminated | truncated).astype(dtype)
    if next_values is None:
        tail = jnp.zeros_like(rewards)
    else:
        cut = truncated.at[-1].set(True) & ~terminated
        continues = continues.at[-1].set(0.0)
        tail = cut.astype(dtype) * next_values

    def backward(next_return: jax.Array, x: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array]:
        reward, cont, bootstrap = x
        ret = reward + gamma * (cont * next_return + bootstrap)
        return ret, ret

    _, returns = jax.lax.scan(backward, jnp.zeros_like(rewards[0]), (rewards, continues, tail), reverse=True)
    return returns


def normalize(x: Float[Array, "*batch"], eps: float = 1e-8) -> Float[Array, "*batch"]:
    """Zero mean, unit standard deviation over all entries (advantage normalisation)."""
    return (x - x.mean()) / (x.std() + eps)
