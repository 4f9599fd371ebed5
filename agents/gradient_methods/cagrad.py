"""CAGrad: the update that maximises the worst task's improvement near the average gradient.

Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021
(arXiv:2110.14048). Primal (eq. 2 with the linearised losses):
    max_d min_i ⟨g_i, d⟩   s.t.   ‖d − g0‖ ≤ c‖g0‖,   g0 = mean_i g_i.
Its dual (eq. 3 / Algorithm 1) is a problem over the simplex of task weights w:
    min_w F(w) = g_wᵀ g0 + c‖g0‖ ‖g_w‖,   g_w = Σ_i w_i g_i,
and the primal solution is d = g0 + (c‖g0‖ / ‖g_w‖) g_w (returned as is, without the optional
rescaling of the authors' code; Adam after it is indifferent to a global scale).

F depends on the gradients only through the Gram matrix A: g_wᵀ g0 = wᵀ A 1/T, ‖g_w‖² = wᵀ A w.
It is solved by projected gradient descent on the simplex with an adaptive step (grown after an
accepted step, halved after a rejected one), on A / ‖g0‖² for a scale-free problem.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .core import GradientMethod, conflict_fraction, entropy, gram_matrix, no_state, weighted_sum

SOLVER_ITERATIONS = 200
"""Projected-gradient steps on the T×T dual; tests check the result against scipy for T ≤ 4."""
MAX_STEP = 1e4
"""Cap on the adaptive step: once converged every step is accepted and would grow without bound."""


def project_to_simplex(v: Float[Array, " n"]) -> Float[Array, " n"]:
    """Euclidean projection onto {w ≥ 0, Σ w = 1} by sorting (Held et al. 1974; Duchi et al. 2008)."""
    n = v.shape[0]
    u = jnp.sort(v)[::-1]
    cumulative = jnp.cumsum(u) - 1.0
    index = jnp.arange(1, n + 1, dtype=v.dtype)
    rho = jnp.sum(u - cumulative / index > 0)  # ≥ 1 always
    theta = cumulative[rho - 1] / rho.astype(v.dtype)
    return jnp.maximum(v - theta, 0.0)


def cagrad_dual_objective(
    w: Float[Array, " tasks"], gram: Float[Array, "tasks tasks"], c: float
) -> Float[Array, ""]:
    """F(w) / ‖g0‖² on the normalised Gram matrix: wᵀ A 1/T + c sqrt(wᵀ A w)."""
    b = jnp.mean(gram, axis=1)
    return w @ b + c * jnp.sqrt(jnp.maximum(w @ gram @ w, 0.0) + 1e-12)


def cagrad_weights(
    gram: Float[Array, "tasks tasks"], c: float
) -> tuple[Float[Array, " tasks"], Float[Array, " tasks"]]:
    """The dual minimiser w and the weights of d = Σ_k weights_k g_k."""
    num_tasks = gram.shape[0]
    g0_sq = jnp.mean(gram)  # ‖g0‖² = 1ᵀ A 1 / T²
    scaled = gram / jnp.maximum(g0_sq, jnp.finfo(gram.dtype).tiny)
    objective = lambda w: cagrad_dual_objective(w, scaled, c)
    value_and_grad = jax.value_and_grad(objective)

    def iterate(_, carry):
        w, value, grad, step = carry
        candidate = project_to_simplex(w - step * grad)
        delta = candidate - w
        new_value, new_grad = value_and_grad(candidate)
        accept = new_value <= value + grad @ delta + (delta @ delta) / (2 * step)
        keep = lambda new, old: jnp.where(accept, new, old)
        return (
            keep(candidate, w),
            keep(new_value, value),
            keep(new_grad, grad),
            jnp.where(accept, jnp.minimum(1.5 * step, MAX_STEP), 0.5 * step),
        )

    w0 = jnp.full((num_tasks,), 1.0 / num_tasks, gram.dtype)
    step0 = 1.0 / (jnp.trace(scaled) + 1.0)
    w, *_ = jax.lax.fori_loop(0, SOLVER_ITERATIONS, iterate, (w0, *value_and_grad(w0), step0))
    gw_norm = jnp.sqrt(jnp.maximum(w @ scaled @ w, 0.0))
    # c‖g0‖/‖g_w‖ in the normalised problem; no conflict-averse term if g_w vanishes.
    scale = jnp.where(gw_norm > 1e-12, c / jnp.maximum(gw_norm, 1e-12), 0.0)
    return w, 1.0 / num_tasks + scale * w


def cagrad(c: float) -> GradientMethod:
    """CAGrad with radius `c` (the paper's default 0.4; c = 0 is the mean gradient)."""

    def combine(task_grads, task_losses, state, key):
        del task_losses, key
        gram = gram_matrix(task_grads)
        w, weights = cagrad_weights(gram, c)
        metrics = {"conflict_fraction": conflict_fraction(gram), "weight_entropy": entropy(w)}
        return weighted_sum(weights, task_grads), state, metrics

    return GradientMethod(init=no_state, combine=combine)
