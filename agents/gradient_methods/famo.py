"""FAMO: task weights that make every task's loss fall at the same relative rate.

Liu et al., "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023 (arXiv:2306.03792),
Algorithm 1. Weights z = softmax(ξ) over logits ξ; the update descends Σ_i z_i log L_i, i.e.
    d = Σ_i (c z_i / L_i) g_i,   c = (Σ_i z_i / L_i)^{-1}                       (eq. 7),
so the weights c z_i / L_i sum to 1, like the mean. After the step, with the losses of the same
batch before (θ_t) and after (θ_{t+1}) it,
    δ_i = log L_i(θ_t) − log L_i(θ_{t+1}),   ξ ← ξ − β (J_z(ξ)ᵀ δ + γ ξ)            (eq. 8),
J_z(ξ)ᵀ δ = z ⊙ (δ − ⟨z, δ⟩): a task whose loss fell more than the weighted average loses weight.
As in the authors' code (their MT10 runs included), the logit step is Adam with the decay γ ξ
added to the gradient, and the losses after the step come from re-evaluating the same batch.
The weights depend on the losses only, so the step needs no per-task gradients: one backward
pass of Σ_i w_i L_i (`weigh`), FAMO's O(1) cost in the number of tasks.

Published settings: β = 0.025, γ = 1e-3 (the authors' MT10 script uses γ = 0.01). FAMO needs
positive losses (log L): the SAC core applies it to the critic, as the authors did on MT10.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from .core import GradientMethod, entropy, weighted_sum

LOSS_FLOOR = 1e-8
"""Added to the losses before the log and the division, as a critic loss can reach ~0."""


class FAMOState(NamedTuple):
    logits: Float[Array, " tasks"]
    log_losses_before: Float[Array, " tasks"]
    """log(L_i(θ_t) + floor) of the step in progress, for δ once the losses after it are known."""
    opt_state: optax.OptState


def famo_weights(logits: Float[Array, " tasks"], losses: Float[Array, " tasks"]) -> Float[Array, " tasks"]:
    """c z_i / L_i of eq. 7: the gradient of Σ z_i log L_i, rescaled to weights summing to 1."""
    ratio = jax.nn.softmax(logits) / (losses + LOSS_FLOOR)
    return ratio / jnp.sum(ratio)


def famo_logit_gradient(
    logits: Float[Array, " tasks"], delta: Float[Array, " tasks"], gamma: float
) -> Float[Array, " tasks"]:
    """J_z(ξ)ᵀ δ + γ ξ of eq. 8, by autodiff through the softmax."""
    _, vjp = jax.vjp(jax.nn.softmax, logits)
    return vjp(delta)[0] + gamma * logits


def famo(gamma: float, learning_rate: float) -> GradientMethod:
    """FAMO with logit decay `gamma` and logit learning rate (β)."""
    optimizer = optax.adam(learning_rate)

    def init(num_tasks: int) -> FAMOState:
        logits = jnp.zeros((num_tasks,), jnp.float32)
        return FAMOState(logits, jnp.zeros((num_tasks,), jnp.float32), optimizer.init(logits))

    def weigh(task_losses, state: FAMOState):
        losses = jax.lax.stop_gradient(task_losses).astype(state.logits.dtype)
        weights = famo_weights(state.logits, losses)
        metrics = {"weight_entropy": entropy(weights), "logit_entropy": entropy(jax.nn.softmax(state.logits))}
        return weights, state._replace(log_losses_before=jnp.log(losses + LOSS_FLOOR)), metrics

    def combine(task_grads, task_losses, state: FAMOState, key):
        del key
        weights, state, metrics = weigh(task_losses, state)
        return weighted_sum(weights, task_grads), state, metrics

    def after_step(state: FAMOState, losses_after: Float[Array, " tasks"]) -> FAMOState:
        delta = state.log_losses_before - jnp.log(losses_after.astype(state.logits.dtype) + LOSS_FLOOR)
        grad = famo_logit_gradient(state.logits, delta, gamma)
        updates, opt_state = optimizer.update(grad, state.opt_state, state.logits)
        return state._replace(logits=optax.apply_updates(state.logits, updates), opt_state=opt_state)

    return GradientMethod(init=init, combine=combine, after_step=after_step, weigh=weigh)
