"""PEARL's four networks (policy, twin Q, V on [obs, z]; the context encoder) and their heads."""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from mtrl.networks import MLP, StackedMLP
from mtrl.types import EnvSpec, PyTree

from .config import Config


class Networks(NamedTuple):
    actor: nn.Module  # [obs, z] -> (mean, log-std) of the pre-tanh Gaussian
    critic: nn.Module  # [obs, action, z] -> twin Q, [rows, 2, 1]
    value: nn.Module  # [obs, z] -> V
    encoder: nn.Module  # context transition -> (μ_n, raw σ²_n)


def make_networks(spec: EnvSpec, config: Config) -> Networks:
    return Networks(
        actor=MLP((*config.hidden_sizes, 2 * spec.action_size)),
        critic=StackedMLP(2, (*config.hidden_sizes, 1)),
        value=MLP((*config.hidden_sizes, 1)),
        encoder=MLP((*config.encoder_hidden_sizes, 2 * config.latent_size)),
    )


def policy(networks: Networks, actor_params: PyTree, obs: jax.Array, z: jax.Array, config: Config):
    out = networks.actor.apply(actor_params, jnp.concatenate([obs, z], axis=-1))
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, config.log_std_min, config.log_std_max)


def q_values(networks: Networks, critic_params: PyTree, obs, action, z) -> Float[Array, "2 rows"]:
    return networks.critic.apply(critic_params, jnp.concatenate([obs, action, z], axis=-1))[..., 0].T


def state_value(networks: Networks, value_params: PyTree, obs, z) -> Float[Array, " rows"]:
    return networks.value.apply(value_params, jnp.concatenate([obs, z], axis=-1))[..., 0]
