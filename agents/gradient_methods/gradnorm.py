"""GradNorm: learn task weights that give every task a gradient norm matched to its training rate.

Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
Networks", ICML 2018 (arXiv:1711.02257), Section 3.2 and Algorithm 1. With weights w_i (Σ w_i = T),
    G_i = ‖∇ w_i L_i‖ = w_i ‖g_i‖,   Ḡ = mean_i G_i,
    L̃_i = L_i(t) / L_i(0),   r_i = L̃_i / mean_j L̃_j          (inverse training rate),
    L_grad = Σ_i |G_i − Ḡ r_i^α|   with the targets Ḡ r_i^α held constant (eq. 2),
so ∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α) ‖g_i‖. The network steps along Σ_i w_i g_i / T (the mean
gradient when all w_i = 1); then the weights take one Adam step on L_grad and are renormalised
to sum to T. α is the asymmetry: 0 equalises the norms, larger α favours slow tasks.

Two choices of ours: the norms are over all the network's parameters rather than its last shared
layer (the per-task gradients are already there, and any torso works without naming a layer),
and the weights have their own Adam (the paper updates them with "standard update rules") so that
the step does not depend on the scale of the gradient norms. L_i(0) is the first loss seen.
GradNorm needs positive losses (loss ratios): the SAC core applies it to the critic.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

from .core import GradientMethod, entropy, gram_matrix, weighted_sum

MIN_WEIGHT = 1e-3
"""Floor on a task's weight before renormalising: a weight at zero would never come back."""


class GradNormState(NamedTuple):
    weights: Float[Array, " tasks"]
    initial_losses: Float[Array, " tasks"]
    started: Int[Array, ""]
    """0 until the first step has recorded L_i(0)."""
    opt_state: optax.OptState


def gradnorm_weight_gradient(
    weights: Float[Array, " tasks"],
    grad_norms: Float[Array, " tasks"],
    losses: Float[Array, " tasks"],
    initial_losses: Float[Array, " tasks"],
    alpha: float,
) -> tuple[Float[Array, " tasks"], Float[Array, " tasks"]]:
    """∂L_grad/∂w and the target norms Ḡ r^α (eq. 2)."""
    norms = weights * grad_norms
    tiny = jnp.finfo(losses.dtype).tiny
    ratios = losses / jnp.maximum(initial_losses, tiny)
    inverse_rate = ratios / jnp.maximum(jnp.mean(ratios), tiny)
    targets = jax.lax.stop_gradient(jnp.mean(norms) * inverse_rate**alpha)
    return jnp.sign(norms - targets) * grad_norms, targets


def gradnorm(alpha: float, learning_rate: float) -> GradientMethod:
    """GradNorm with asymmetry `alpha` (paper: 1.5 on NYUv2) and weight learning rate."""
    optimizer = optax.adam(learning_rate)

    def init(num_tasks: int) -> GradNormState:
        weights = jnp.ones((num_tasks,), jnp.float32)
        zeros = jnp.zeros((num_tasks,), jnp.float32)
        return GradNormState(weights, zeros, jnp.zeros((), jnp.int32), optimizer.init(weights))

    def combine(task_grads, task_losses, state: GradNormState, key):
        del key
        num_tasks = task_losses.shape[0]
        losses = jax.lax.stop_gradient(task_losses).astype(state.weights.dtype)
        initial = jnp.where(state.started > 0, state.initial_losses, losses)
        grad_norms = jnp.sqrt(jnp.maximum(jnp.diag(gram_matrix(task_grads)), 0.0))
        grad = weighted_sum(state.weights / num_tasks, task_grads)

        weight_grad, targets = gradnorm_weight_gradient(state.weights, grad_norms, losses, initial, alpha)
        updates, opt_state = optimizer.update(weight_grad, state.opt_state, state.weights)
        weights = jnp.maximum(optax.apply_updates(state.weights, updates), MIN_WEIGHT)
        weights = num_tasks * weights / jnp.sum(weights)
        norms = state.weights * grad_norms
        metrics = {
            "weight_entropy": entropy(state.weights),
            "weight_min": jnp.min(state.weights),
            "weight_max": jnp.max(state.weights),
            "norm_target_gap": jnp.mean(jnp.abs(norms - targets)) / jnp.maximum(jnp.mean(norms), 1e-12),
        }
        new_state = GradNormState(weights, initial, jnp.ones((), jnp.int32), opt_state)
        return grad, new_state, metrics

    return GradientMethod(init=init, combine=combine)
