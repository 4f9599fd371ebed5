"""PEARL's three losses as pure functions of (params, batch, z or context, key): critic + encoder (eq. 2 with
SAC's Q loss), V and the actor (SAC, Haarnoja et al., ICML 2018, arXiv:1801.01290, eqs. 5, 7 and 10)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from mtrl.types import PyTree, Transition

from ..sac.networks import sample_action
from .config import Config
from .inference import kl_to_prior, posterior, sample_latent
from .networks import Networks, policy, q_values, state_value


class CriticAux(NamedTuple):
    z: Float[Array, "g latent"]
    kl: Float[Array, ""]
    q_mean: Float[Array, ""]
    z_var: Float[Array, ""]


def _rows(z: jax.Array, n: int) -> jax.Array:
    """Each goal's z repeated for its n rows, flattened like the batch: [g·n, latent]."""
    return jnp.repeat(z, n, axis=0)


def critic_loss(
    trainable: dict[str, PyTree], batch: Transition, context: jax.Array, mask: jax.Array, key: jax.Array, *,
    networks: Networks, config: Config, target_value_params: PyTree,
) -> tuple[Float[Array, ""], CriticAux]:  # fmt: skip
    """Σ_i E[(Q_i(s, a, z) − y)²] + kl_lambda Σ_goals KL(q(z|c) ‖ N(0, I)), z ~ q(z|c) reparameterised.

    y = reward_scale · r + γ (1 − terminated) V̄(s', z), held fixed. The gradient reaches the encoder through
    z in Q and through the KL term (PEARL's L_critic + β L_KL). Batch rows are `[g · n]`, goal-major.
    """
    mean, var = posterior(networks, trainable["encoder"], context, mask, config)
    z = sample_latent(mean, var, key)
    zr = _rows(z, batch.reward.shape[0] // z.shape[0])
    next_v = state_value(networks, target_value_params, batch.next_obs, zr)
    target = config.reward_scale * batch.reward + (1.0 - batch.terminated) * config.gamma * next_v
    target = jax.lax.stop_gradient(target)
    q = q_values(networks, trainable["critic"], batch.obs, batch.action, zr)
    kl = jnp.sum(kl_to_prior(mean, var))
    loss = jnp.sum(jnp.mean((q - target) ** 2, axis=-1)) + config.kl_lambda * kl
    return loss, CriticAux(jax.lax.stop_gradient(z), kl, q.mean(), var.mean())


def value_loss(
    value_params: PyTree, batch: Transition, z: jax.Array, key: jax.Array, *, networks: Networks,
    config: Config, actor_params: PyTree, critic_params: PyTree,
) -> tuple[Float[Array, ""], tuple[()]]:  # fmt: skip
    """E[(V(s, z) − (min_i Q_i(s, ã, z) − log π(ã|s, z)))²], ã ~ π(·|s, z); z held fixed (PEARL's code)."""
    zr = jax.lax.stop_gradient(_rows(z, batch.reward.shape[0] // z.shape[0]))
    mean, log_std = policy(networks, actor_params, batch.obs, zr, config)
    action, log_prob = sample_action(mean, log_std, key)
    target = jax.lax.stop_gradient(q_values(networks, critic_params, batch.obs, action, zr).min(0) - log_prob)
    return jnp.mean((state_value(networks, value_params, batch.obs, zr) - target) ** 2), ()


def actor_loss(
    actor_params: PyTree, batch: Transition, z: jax.Array, key: jax.Array, *, networks: Networks,
    config: Config, critic_params: PyTree,
) -> tuple[Float[Array, ""], Float[Array, " rows"]]:  # fmt: skip
    """E[log π(ã|s, z) − min_i Q_i(s, ã, z)] + mean/log-std penalties; z is held fixed, so the encoder gets
    no gradient from the actor (PEARL detaches z for the policy)."""
    zr = jax.lax.stop_gradient(_rows(z, batch.reward.shape[0] // z.shape[0]))
    mean, log_std = policy(networks, actor_params, batch.obs, zr, config)
    action, log_prob = sample_action(mean, log_std, key)
    q = q_values(networks, critic_params, batch.obs, action, zr).min(0)
    reg = config.policy_mean_reg * jnp.mean(mean**2) + config.policy_std_reg * jnp.mean(log_std**2)
    return jnp.mean(log_prob - q) + reg, log_prob
