"""Jitted collect and update scans: the body of the off-policy training loop.

`OffPolicyState` is the whole carry. `collect` runs `lax.scan` over vector steps (act → env.step →
replay.add) and `learn` runs `lax.scan` over gradient steps (task-balanced sample → agent.update). Both are
plain functions of pytrees, bound to an env and an agent with `functools.partial`, so they `jit` and `vmap`
over seeds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from mtrl import replay as replay_lib
from mtrl.types import Agent, Env, PyTree, TimeStep, Transition


@struct.dataclass
class EpisodeStats:
    """Running per-env episode return and success flag, totals over the episodes that ended, and per-env
    counts of steps on which the simulator went unstable (and reset itself)."""

    running_return: jax.Array
    running_success: jax.Array
    episodes: jax.Array
    successes: jax.Array
    returns: jax.Array
    unstable_steps: jax.Array

    @classmethod
    def zeros(cls, num_envs: int) -> EpisodeStats:
        unstable = jnp.zeros(num_envs, jnp.int32)
        return cls(jnp.zeros(num_envs), jnp.zeros(num_envs, bool), *jnp.zeros((3,)), unstable)

    def record(self, step: TimeStep) -> EpisodeStats:
        ended = step.terminated | step.truncated
        ret = self.running_return + step.reward
        success = self.running_success | step.success
        return EpisodeStats(
            running_return=jnp.where(ended, 0.0, ret),
            running_success=jnp.where(ended, False, success),
            episodes=self.episodes + ended.sum(),
            successes=self.successes + (ended & success).sum(),
            returns=self.returns + jnp.where(ended, ret, 0.0).sum(),
            unstable_steps=self.unstable_steps + step.unstable,
        )

    def clear_totals(self) -> EpisodeStats:
        """Start new totals; episodes still running keep their return and success so far."""
        zero = jnp.zeros_like(self.episodes)
        unstable = jnp.zeros_like(self.unstable_steps)
        return self.replace(episodes=zero, successes=zero, returns=zero, unstable_steps=unstable)


@struct.dataclass
class OffPolicyState:
    """Everything the loop carries: agent, env and replay state, the last time step, stats and key."""

    agent: PyTree
    env: PyTree
    timestep: TimeStep
    replay: replay_lib.ReplayState
    stats: EpisodeStats
    key: jax.Array


def init_state(env: Env, agent: Agent, key: jax.Array, replay_capacity: int) -> OffPolicyState:
    """Initialise the agent, reset the env and allocate replay for one seed."""
    agent_key, env_key, key = jax.random.split(key, 3)
    env_state, timestep = env.reset(env_key)
    return OffPolicyState(
        agent=agent.init(agent_key, env.spec),
        env=env_state,
        timestep=timestep,
        replay=replay_lib.init_replay(env.spec, replay_capacity),
        stats=EpisodeStats.zeros(env.spec.num_envs),
        key=key,
    )


def collect_step(
    env: Env, agent: Agent, random_actions: bool, state: OffPolicyState, _: None
) -> tuple[OffPolicyState, None]:
    """One vector step: act on the last observation, step every env, store the transitions."""
    key, act_key = jax.random.split(state.key)
    obs, task_id = state.timestep.obs, state.timestep.task_id
    if random_actions:
        shape = (env.spec.num_envs, env.spec.action_size)
        action = jax.random.uniform(act_key, shape, minval=env.spec.action_low, maxval=env.spec.action_high)
    else:
        action = agent.act(state.agent, obs, task_id, act_key, False)
    env_state, step = env.step(state.env, action)
    transition = Transition(
        obs=obs,
        action=action,
        reward=step.reward,
        next_obs=step.final_obs,
        terminated=step.terminated.astype(jnp.float32),
        task_id=task_id,
    )
    return state.replace(
        env=env_state,
        timestep=step,
        replay=replay_lib.add(state.replay, transition),
        stats=state.stats.record(step),
        key=key,
    ), None


def update_step(
    agent: Agent, batch_per_task: int, state: OffPolicyState, _: None
) -> tuple[OffPolicyState, dict[str, jax.Array]]:
    """One gradient step on a task-balanced batch."""
    key, sample_key, update_key = jax.random.split(state.key, 3)
    batch = replay_lib.sample(state.replay, sample_key, batch_per_task)
    agent_state, metrics = agent.update(state.agent, batch, update_key)
    return state.replace(agent=agent_state, key=key), metrics


def collect(
    env: Env, agent: Agent, state: OffPolicyState, *, num_steps: int, random_actions: bool
) -> OffPolicyState:
    """`num_steps` vector steps in one `lax.scan`."""

    def body(carry: OffPolicyState, x: None) -> tuple[OffPolicyState, None]:
        return collect_step(env, agent, random_actions, carry, x)

    state, _ = jax.lax.scan(body, state, length=num_steps)
    return state


def learn(
    agent: Agent, state: OffPolicyState, *, num_updates: int, batch_per_task: int
) -> tuple[OffPolicyState, dict[str, jax.Array]]:
    """`num_updates` gradient steps in one `lax.scan`; returns metrics averaged over them."""

    def body(carry: OffPolicyState, x: None) -> tuple[OffPolicyState, dict[str, jax.Array]]:
        return update_step(agent, batch_per_task, carry, x)

    state, metrics = jax.lax.scan(body, state, length=num_updates)
    return state, jax.tree.map(jnp.mean, metrics)
