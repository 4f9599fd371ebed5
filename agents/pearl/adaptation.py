"""Algorithm 2 (meta-test): act with z from the prior, then from q(z|c) of the adaptation episodes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float

from mtrl.types import EnvSpec, TimeStep, Transition

from ..sac.networks import sample_action
from .agent import State
from .inference import context_features, posterior, sample_latent
from .networks import policy


@struct.dataclass
class Context:
    """Each env's belief q(z) and the z it acts with."""

    mean: Float[Array, "envs latent"]
    var: Float[Array, "envs latent"]
    z: Float[Array, "envs latent"]


def init_adaptation(state: State, spec: EnvSpec, key: jax.Array) -> Context:
    """The prior N(0, I) for every env, and a first z drawn from it."""
    shape = (spec.num_envs, state.config.latent_size)
    mean, var = jnp.zeros(shape), jnp.ones(shape)
    return Context(mean, var, sample_latent(mean, var, key))


def act(
    state: State, context: Context, step: TimeStep, key: jax.Array, deterministic: bool
) -> tuple[jax.Array, Context]:
    """Exploring: a sampled action with the context's z, and a fresh z from the current belief at every
    episode start (PEARL's worker samples z per rollout). Before `adapt` the belief is the prior, so the
    adaptation episodes are collected as the encoder's training context was (prior episodes; the posterior is
    not updated online). Deterministic: tanh of the mean action with z = the belief's mean."""
    z_key, action_key = jax.random.split(key)
    if deterministic:
        mean, _ = policy(state.networks, state.actor_params, step.obs, context.mean, state.config)
        return jnp.tanh(mean), context
    started = (step.truncated | step.terminated)[:, None]
    z = jnp.where(started, sample_latent(context.mean, context.var, z_key), context.z)
    mean, log_std = policy(state.networks, state.actor_params, step.obs, z, state.config)
    action, _ = sample_action(mean, log_std, action_key)
    return action, context.replace(z=z)


def adapt(state: State, context: Context, episodes: Transition, key: jax.Array) -> Context:
    """q(z|c) from every transition of the N adaptation episodes (`[envs, N, T]`), and z drawn from it."""
    cfg = state.config
    features = context_features(episodes, cfg.use_next_obs_in_context)
    features = features.reshape(features.shape[0], -1, features.shape[-1])
    mean, var = posterior(state.networks, state.encoder_params, features, jnp.ones(features.shape[:2]), cfg)
    return Context(mean, var, sample_latent(mean, var, key))
