"""What the SAC core needs from a network: a tanh-Gaussian policy and an ensemble of Q-functions.

Agents differ only in the torso: any Flax module called as `module(x, task_id) -> [batch, out]`.
The actor's torso maps obs to `2 * action_size` numbers (mean, log-std); the critic's maps
`concat(obs, action)` to one Q-value (obs without its one-hot task id for torsos that take the task
through their own routing, `make_sac_networks`) and is instantiated `num_critics` times, parameters stacked on
a leading axis.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from mtrl.types import EnvSpec, PyTree

from .config import SACConfig


class SACNetworks(NamedTuple):
    """The actor and critic torsos of an agent (hashable, so they live in a static state field)."""

    actor: nn.Module
    critic: nn.Module
    hidden_task_columns: int = 0
    """Trailing one-hot task-id columns cut from the observation before the torsos see it (0: none)."""


def make_sac_networks(actor: nn.Module, critic: nn.Module, spec: EnvSpec, config: SACConfig) -> SACNetworks:
    """Actor and critic torsos; the one-hot task id reaches them only if `config.one_hot_input`."""
    hidden = 0 if config.one_hot_input else spec.task_id_columns
    return SACNetworks(actor=actor, critic=critic, hidden_task_columns=hidden)


def torso_obs(networks: SACNetworks, obs: Float[Array, "batch obs"]) -> Float[Array, "batch inputs"]:
    """What the torsos read of the observation: all of it, or the state without the one-hot task id."""
    if not networks.hidden_task_columns:
        return obs
    return obs[..., : obs.shape[-1] - networks.hidden_task_columns]


def init_params(
    networks: SACNetworks, key: jax.Array, spec: EnvSpec, num_critics: int
) -> tuple[PyTree, PyTree]:
    """Initialise actor params and `num_critics` independently drawn critics, stacked on axis 0."""
    actor_key, critic_key = jax.random.split(key)
    obs = torso_obs(networks, jnp.zeros((1, spec.obs_size), jnp.float32))
    obs_action = jnp.zeros((1, obs.shape[-1] + spec.action_size), jnp.float32)
    task_id = jnp.zeros((1,), jnp.int32)
    actor_params = networks.actor.init(actor_key, obs, task_id)
    critic_keys = jax.random.split(critic_key, num_critics)
    critic_params = jax.vmap(networks.critic.init, in_axes=(0, None, None))(critic_keys, obs_action, task_id)
    return actor_params, critic_params


def policy(
    networks: SACNetworks,
    actor_params: PyTree,
    obs: Float[Array, "batch obs"],
    task_id: Int[Array, " batch"],
    config: SACConfig,
) -> tuple[Float[Array, "batch act"], Float[Array, "batch act"]]:
    """Mean and clamped log-std of the pre-tanh Gaussian."""
    out = networks.actor.apply(actor_params, torso_obs(networks, obs), task_id)
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, config.log_std_min, config.log_std_max)


def sample_action(
    mean: Float[Array, "batch act"], log_std: Float[Array, "batch act"], key: jax.Array
) -> tuple[Float[Array, "batch act"], Float[Array, " batch"]]:
    """Reparameterised tanh-Gaussian sample and its log-density.

    Haarnoja et al. 2018 (arXiv:1801.01290): eq. 11 (a = f(ε; s)) and Appendix C, eq. 21 (the tanh
    change of variables).

    The noise is exactly `jax.random.normal(key, mean.shape)`, so tests can reproduce a draw. The
    tanh correction uses `log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`, stable for large |u|.
    """
    noise = jax.random.normal(key, mean.shape, mean.dtype)
    pre_tanh = mean + jnp.exp(log_std) * noise
    gaussian = -0.5 * noise**2 - log_std - 0.5 * math.log(2 * math.pi)
    squash = 2.0 * (math.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return jnp.tanh(pre_tanh), jnp.sum(gaussian - squash, axis=-1)


def q_values(
    networks: SACNetworks,
    critic_params: PyTree,
    obs: Float[Array, "batch obs"],
    action: Float[Array, "batch act"],
    task_id: Int[Array, " batch"],
) -> Float[Array, "critics batch"]:
    """Every critic's Q(s, a), one row per critic."""
    obs_action = jnp.concatenate([torso_obs(networks, obs), action], axis=-1)
    apply = jax.vmap(networks.critic.apply, in_axes=(0, None, None))
    return apply(critic_params, obs_action, task_id)[..., 0]
