"""PCGrad: project each task gradient off the normal plane of every gradient it conflicts with.

Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020 (arXiv:2001.06782), Algorithm 1:
for each task i, in a random order over the other tasks j,
    if g_i^PC · g_j < 0:  g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j,
and the update is built from the g_i^PC (here their mean, so that without conflicts PCGrad is the
mean gradient, the scale plain MT-SAC uses).

Every g_i^PC stays in the span of the task gradients, g_i^PC = Σ_k C_ik g_k, so the whole surgery
runs on the T×T coefficients C and the Gram matrix A = G Gᵀ (g_i^PC · g_j = (C A)_ij); the
P-dimensional gradients are touched once, by the final weighted sum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .core import GradientMethod, conflict_fraction, gram_matrix, no_state, weighted_sum


def random_orders(key: jax.Array, num_tasks: int) -> Int[Array, "tasks tasks"]:
    """Row i: a random permutation of all tasks, the order in which task i meets the others."""
    keys = jax.random.split(key, num_tasks)
    return jax.vmap(lambda k: jax.random.permutation(k, num_tasks))(keys)


def pcgrad_coefficients(
    gram: Float[Array, "tasks tasks"], orders: Int[Array, "tasks tasks"]
) -> Float[Array, "tasks tasks"]:
    """C with g_i^PC = Σ_k C_ik g_k, projecting row i against the tasks in `orders[i]` (i skipped)."""
    num_tasks = gram.shape[0]
    tiny = jnp.finfo(gram.dtype).tiny
    rows = jnp.arange(num_tasks)

    def project(position, coeffs):
        j = orders[:, position]  # one partner per row
        dot = jnp.einsum("ik,ik->i", coeffs, gram[j])  # g_i^PC · g_j (A is symmetric)
        norm_sq = gram[j, j]
        conflict = (dot < 0) & (j != rows) & (norm_sq > tiny)
        step = jnp.where(conflict, dot / jnp.where(conflict, norm_sq, 1.0), 0.0)
        return coeffs.at[rows, j].add(-step)

    return jax.lax.fori_loop(0, num_tasks, project, jnp.eye(num_tasks, dtype=gram.dtype))


def pcgrad() -> GradientMethod:
    """PCGrad with a fresh random order per task at every step, drawn from the step's key."""

    def combine(task_grads, task_losses, state, key):
        del task_losses
        gram = gram_matrix(task_grads)
        num_tasks = gram.shape[0]
        coeffs = pcgrad_coefficients(gram, random_orders(key, num_tasks))
        weights = jnp.sum(coeffs, axis=0) / num_tasks  # mean_i g_i^PC = Σ_k (Σ_i C_ik / T) g_k
        metrics = {"conflict_fraction": conflict_fraction(gram)}
        return weighted_sum(weights, task_grads), state, metrics

    return GradientMethod(init=no_state, combine=combine)
