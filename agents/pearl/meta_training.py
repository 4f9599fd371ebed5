"""Algorithm 1, one iteration: per-goal episodes with z from the prior or q(z|c), then the gradient steps."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Int

from mtrl.onpolicy import RolloutState, Trajectory, collect_steps
from mtrl.types import Env, Transition

from ..sac.networks import sample_action
from .agent import State, update
from .config import Config
from .inference import context_features, posterior, sample_latent
from .networks import Networks, policy
from .replay import GoalReplay, add_episodes, clear_slots, sample_rows


class CollectCarry(NamedTuple):
    rollout: RolloutState
    replay: GoalReplay
    context_replay: GoalReplay
    key: jax.Array


def _act(networks: Networks, config: Config, params, obs, task_id, key):
    """Behaviour policy for `mtrl.onpolicy.collect_steps`: params = (actor params, z [envs, latent])."""
    actor_params, z = params
    mean, log_std = policy(networks, actor_params, obs, z, config)
    return sample_action(mean, log_std, key)


def collect_episode(
    env: Env, state: State, slots: Int[Array, " envs"], to_context: bool, carry: CollectCarry,
    use_posterior: Bool[Array, ""],
) -> tuple[CollectCarry, Trajectory]:  # fmt: skip
    """One episode per env with z from the prior or from q(z|c) of a fresh context batch of its goal."""
    cfg = state.config
    key, ctx_key, z_key, roll_key = jax.random.split(carry.key, 4)
    context, mask = sample_rows(carry.context_replay, slots, ctx_key, cfg.embedding_batch_size)
    features = context_features(context, cfg.use_next_obs_in_context)
    mean, var = posterior(state.networks, state.encoder_params, features, mask * use_posterior, cfg)
    z = sample_latent(mean, var, z_key)  # with the mask off this is the prior N(0, I)
    policy_fn = functools.partial(_act, state.networks, cfg)
    start = carry.rollout._replace(key=roll_key)
    rolled, traj = collect_steps(env, policy_fn, (state.actor_params, z), start, env.spec.episode_length)
    episodes = Transition(
        *(jnp.swapaxes(x, 0, 1) for x in (traj.obs, traj.action, traj.reward, traj.next_obs)),
        terminated=jnp.swapaxes(traj.terminated, 0, 1).astype(jnp.float32),
        task_id=jnp.swapaxes(traj.task_id, 0, 1),
    )
    replay = add_episodes(carry.replay, slots, episodes)
    context_replay = (
        add_episodes(carry.context_replay, slots, episodes) if to_context else carry.context_replay
    )
    return CollectCarry(rolled, replay, context_replay, key), traj


def train_iteration(env: Env, state: State, key: jax.Array) -> tuple[State, dict[str, jax.Array]]:
    """Algorithm 1, one iteration: reset (fresh goals), collect prior / posterior episodes per goal in
    lockstep, then `updates_per_iteration` gradient steps on meta-batches of goals."""
    cfg, spec = state.config, env.spec
    reset_key, rollout_key, collect_key, update_key = jax.random.split(key, 4)
    env_state, timestep = env.reset(reset_key)
    slots = timestep.task_id * spec.goals_per_task + env_state.goal_index
    past_warmup = state.iteration >= cfg.warmup_iterations  # before that, every episode uses the prior
    carry = CollectCarry(
        RolloutState(env_state, timestep, rollout_key), state.replay,
        clear_slots(state.context_replay, slots), collect_key,
    )  # fmt: skip
    phases = (  # (episodes, z from the posterior?, stored in the context buffer?)
        (cfg.prior_episodes, False, True),
        (cfg.posterior_episodes, True, True),
        (cfg.extra_posterior_episodes, True, False),
    )
    trajs = {}
    for name, (count, from_posterior, to_context) in zip(
        ("prior", "posterior", "extra"), phases, strict=True
    ):
        if count:
            body = functools.partial(collect_episode, env, state, slots, to_context)
            use = jnp.full((count,), from_posterior) & past_warmup
            carry, trajs[name] = jax.lax.scan(body, carry, use)
    state = state.replace(replay=carry.replay, context_replay=carry.context_replay)
    state, metrics = jax.lax.scan(update, state, jax.random.split(update_key, cfg.updates_per_iteration))
    metrics = jax.tree.map(jnp.mean, metrics)
    success = {k: t.success.any(axis=1) for k, t in trajs.items()}  # [episodes, envs]
    returns = {k: t.reward.sum(axis=1) for k, t in trajs.items()}
    metrics["train/success"] = jnp.concatenate(list(success.values())).astype(jnp.float32).mean()
    metrics["train/episode_return"] = jnp.concatenate(list(returns.values())).mean()
    metrics["train/success_prior"] = success["prior"].astype(jnp.float32).mean()
    post = [success[k] for k in ("posterior", "extra") if k in success]
    if post:
        metrics["train/success_posterior"] = jnp.concatenate(post).astype(jnp.float32).mean()
    return state.replace(iteration=state.iteration + 1), metrics
