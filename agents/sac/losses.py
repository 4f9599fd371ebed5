"""Multi-task SAC losses, pure functions of (params, batch, key).

Equation numbers refer to Haarnoja et al., "Soft Actor-Critic Algorithms and Applications" (2018,
arXiv:1812.05905). The multi-task twist: every row uses the temperature of its own task,
`alpha[task_id]`. The parameters being differentiated come first; what is held fixed is by keyword.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from mtrl.types import PyTree, Transition

from .config import SACConfig
from .networks import SACNetworks, policy, q_values, sample_action


class CriticAux(NamedTuple):
    q_mean: Float[Array, ""]
    target_mean: Float[Array, ""]


class ActorAux(NamedTuple):
    log_prob: Float[Array, " batch"]
    """log π(ã|s) of the actor's sample, reused by the temperature step."""


def alpha_per_row(
    log_alphas: Float[Array, " tasks"], task_id: Int[Array, " batch"]
) -> Float[Array, " batch"]:
    """The temperature of each row's task."""
    return jnp.exp(log_alphas)[task_id]


def critic_loss(
    critic_params: PyTree,
    batch: Transition,
    key: jax.Array,
    *,
    networks: SACNetworks,
    config: SACConfig,
    actor_params: PyTree,
    target_critic_params: PyTree,
    log_alphas: Float[Array, " tasks"],
) -> tuple[Float[Array, ""], CriticAux]:
    """Soft Bellman residual, eq. 5, summed over the critics.

    J_Q(θ_i) = E[½ (Q_θi(s, a) − y)²],
    y = r + γ (1 − terminated) (min_j Q_θ̄j(s', a') − α_task log π(a'|s')),  a' ~ π(·|s'),
    the soft value of eq. 3 with clipped double-Q over the target critics. Truncated rows bootstrap;
    only `terminated` cuts the return. Summing keeps each critic's gradient its own eq. 6.
    """
    mean, log_std = policy(networks, actor_params, batch.next_obs, batch.task_id, config)
    next_action, next_log_prob = sample_action(mean, log_std, key)
    next_q = q_values(networks, target_critic_params, batch.next_obs, next_action, batch.task_id)
    soft_value = next_q.min(axis=0) - alpha_per_row(log_alphas, batch.task_id) * next_log_prob
    target = batch.reward + config.gamma * (1.0 - batch.terminated) * soft_value
    target = jax.lax.stop_gradient(target)
    q = q_values(networks, critic_params, batch.obs, batch.action, batch.task_id)
    loss = jnp.sum(0.5 * jnp.mean((q - target) ** 2, axis=-1))
    return loss, CriticAux(q_mean=q.mean(), target_mean=target.mean())


def actor_loss(
    actor_params: PyTree,
    batch: Transition,
    key: jax.Array,
    *,
    networks: SACNetworks,
    config: SACConfig,
    critic_params: PyTree,
    log_alphas: Float[Array, " tasks"],
) -> tuple[Float[Array, ""], ActorAux]:
    """Policy objective, eq. 7, made differentiable by reparameterising ã = tanh(μ + σ ε).

    J_π(φ) = E[α_task log π(ã|s) − min_j Q_θj(s, ã)]; gradients flow through ã into the actor only.
    """
    mean, log_std = policy(networks, actor_params, batch.obs, batch.task_id, config)
    action, log_prob = sample_action(mean, log_std, key)
    q = q_values(networks, critic_params, batch.obs, action, batch.task_id).min(axis=0)
    alpha = alpha_per_row(log_alphas, batch.task_id)
    loss = jnp.mean(alpha * log_prob - q)
    return loss, ActorAux(log_prob=log_prob)


def alpha_loss(
    log_alphas: Float[Array, " tasks"],
    log_prob: Float[Array, " batch"],
    task_id: Int[Array, " batch"],
    *,
    target_entropy: float,
) -> tuple[Float[Array, ""], tuple[()]]:
    """Temperature objective, eq. 18, one temperature per task.

    J(α) = E[−α_task (log π(a|s) + H̄)]: a task whose policy entropy falls below H̄ raises its α.
    Rows of other tasks give a task's log-alpha no gradient.
    """
    log_prob = jax.lax.stop_gradient(log_prob)
    alpha = alpha_per_row(log_alphas, task_id)
    return jnp.mean(-alpha * (log_prob + target_entropy)), ()
