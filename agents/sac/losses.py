"""Multi-task SAC losses, pure functions of (params, batch, key).

Equation numbers refer to Haarnoja et al., "Soft Actor-Critic Algorithms and Applications" (2018,
arXiv:1812.05905). The multi-task twist: every row uses the temperature of its own task,
`alpha[task_id]`. The parameters being differentiated come first; what is held fixed is by keyword.

Optional task weights (PaCo's loss mask-out, Soft Modularization's temperature weights) scale each
row's term by its task's weight; without them every loss is the plain batch mean, computed as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from mtrl.types import PyTree, Transition

from .config import SACConfig
from .networks import SACNetworks, policy, q_values, sample_action

Weigh = Callable[[Float[Array, " tasks"]], Float[Array, " tasks"]]
"""Task weights from the per-task critic losses of the same forward pass (held fixed)."""


class CriticAux(NamedTuple):
    q_mean: Float[Array, ""]
    target_mean: Float[Array, ""]
    task_losses: Float[Array, " tasks"] | tuple[()] = ()
    """Each task's critic loss (eq. 5 over its rows) before weighting; () when unweighted."""
    task_weights: Float[Array, " tasks"] | tuple[()] = ()
    """The weights `weigh` gave those losses; () when unweighted."""


class ActorAux(NamedTuple):
    log_prob: Float[Array, " batch"]
    """log π(ã|s) of the actor's sample, reused by the temperature step."""


def alpha_per_row(
    log_alphas: Float[Array, " tasks"], task_id: Int[Array, " batch"]
) -> Float[Array, " batch"]:
    """The temperature of each row's task."""
    return jnp.exp(log_alphas)[task_id]


def task_means(
    values: Float[Array, " batch"], task_id: Int[Array, " batch"], num_tasks: int
) -> Float[Array, " tasks"]:
    """Mean of `values` over each task's rows; 0 for a task with no rows in the batch."""
    sums = jax.ops.segment_sum(values, task_id, num_segments=num_tasks)
    counts = jax.ops.segment_sum(jnp.ones_like(values), task_id, num_segments=num_tasks)
    return sums / jnp.maximum(counts, 1.0)


def weigh_rows(
    terms: Float[Array, "... batch"], task_weights: Float[Array, " tasks"], task_id: Int[Array, " batch"]
) -> Float[Array, "... batch"]:
    """Each row's term times its task's weight; a weight-0 row gives exactly 0, even if its term is not
    finite (the forward pass stays finite; a finite term also gets zero gradient)."""
    row_weights = task_weights[task_id]
    return jnp.where(row_weights != 0, row_weights * terms, 0.0)


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
    weigh: Weigh | None = None,
) -> tuple[Float[Array, ""], CriticAux]:
    """Soft Bellman residual, eq. 5, summed over the critics.

    J_Q(θ_i) = E[½ (Q_θi(s, a) − y)²],
    y = r + γ (1 − terminated) (min_j Q_θ̄j(s', a') − α_task log π(a'|s')),  a' ~ π(·|s'),
    the soft value of eq. 3 with clipped double-Q over the target critics. Truncated rows bootstrap;
    only `terminated` cuts the return. Summing keeps each critic's gradient its own eq. 6.

    With `weigh`, each task's rows count with weight w = weigh(L), L the per-task losses of this
    same forward pass (held fixed): J = Σ_i ½ mean_b w_task (Q_θi − y)². A weight-0 task's
    residuals are zeroed before squaring, so a non-finite target gives it no NaN gradient.
    """
    mean, log_std = policy(networks, actor_params, batch.next_obs, batch.task_id, config)
    next_action, next_log_prob = sample_action(mean, log_std, key)
    next_q = q_values(networks, target_critic_params, batch.next_obs, next_action, batch.task_id)
    soft_value = next_q.min(axis=0) - alpha_per_row(log_alphas, batch.task_id) * next_log_prob
    target = batch.reward + config.gamma * (1.0 - batch.terminated) * soft_value
    target = jax.lax.stop_gradient(target)
    q = q_values(networks, critic_params, batch.obs, batch.action, batch.task_id)
    if weigh is None:
        loss = jnp.sum(0.5 * jnp.mean((q - target) ** 2, axis=-1))
        return loss, CriticAux(q_mean=q.mean(), target_mean=target.mean())
    residual = q - target
    num_tasks = log_alphas.shape[0]
    task_losses = jax.lax.stop_gradient(
        task_means(0.5 * jnp.sum(residual**2, axis=0), batch.task_id, num_tasks)
    )
    task_weights = jax.lax.stop_gradient(weigh(task_losses))
    row_weights = task_weights[batch.task_id]
    kept = jnp.where(row_weights != 0, residual, 0.0)  # before squaring: no 0 · inf when differentiating
    loss = jnp.sum(0.5 * jnp.mean(row_weights * kept**2, axis=-1))
    return loss, CriticAux(q.mean(), target.mean(), task_losses, task_weights)


def actor_loss(
    actor_params: PyTree,
    batch: Transition,
    key: jax.Array,
    *,
    networks: SACNetworks,
    config: SACConfig,
    critic_params: PyTree,
    log_alphas: Float[Array, " tasks"],
    task_weights: Float[Array, " tasks"] | None = None,
) -> tuple[Float[Array, ""], ActorAux]:
    """Policy objective, eq. 7, made differentiable by reparameterising ã = tanh(μ + σ ε).

    J_π(φ) = E[α_task log π(ã|s) − min_j Q_θj(s, ã)]; gradients flow through ã into the actor only.
    `task_weights` scale each task's rows: E[w_task (α_task log π − min_j Q_θj)].
    """
    mean, log_std = policy(networks, actor_params, batch.obs, batch.task_id, config)
    action, log_prob = sample_action(mean, log_std, key)
    q = q_values(networks, critic_params, batch.obs, action, batch.task_id).min(axis=0)
    alpha = alpha_per_row(log_alphas, batch.task_id)
    terms = alpha * log_prob - q
    if task_weights is not None:
        terms = weigh_rows(terms, task_weights, batch.task_id)
    return jnp.mean(terms), ActorAux(log_prob=log_prob)


def alpha_loss(
    log_alphas: Float[Array, " tasks"],
    log_prob: Float[Array, " batch"],
    task_id: Int[Array, " batch"],
    *,
    target_entropy: float,
    task_weights: Float[Array, " tasks"] | None = None,
    form: str = "log_alpha",
) -> tuple[Float[Array, ""], tuple[()]]:
    """Temperature objective, one temperature per task, in log α (default) or, `form="alpha"`, eq. 18.

    J(log α) = E[−log α_task (log π(a|s) + H̄)]: a task whose policy entropy falls below H̄ raises its α.
    Eq. 18, J = E[−α_task (log π + H̄)], has the same sign of gradient, but its gradient in log α shrinks
    with α. The log form is that of the MOORE authors' code (`MTSAC._update_alpha`), the public JAX
    re-implementation and most SAC code; eq. 18's is CARE's mtrl code's.
    Rows of other tasks give a task's log-alpha no gradient; `task_weights` scale each task's rows.
    """
    log_prob = jax.lax.stop_gradient(log_prob)
    scale = log_alphas[task_id] if form == "log_alpha" else alpha_per_row(log_alphas, task_id)
    terms = -scale * (log_prob + target_entropy)
    if task_weights is not None:
        terms = weigh_rows(terms, task_weights, task_id)
    return jnp.mean(terms), ()
