"""Aligned-MTL: make the task gradients' matrix perfectly conditioned before averaging.

Senushkin et al., "Independent Component Alignment for Multi-Task Learning", CVPR 2023
(arXiv:2305.19000), Algorithm 1. With the task gradients as rows of G and the eigendecomposition
G Gᵀ = V Λ Vᵀ, the aligned gradients are Ĝ = B G with B = σ_min V Λ^{-1/2} Vᵀ: Ĝ = σ_min U Vᵀ
keeps G's singular vectors and sets every singular value to the smallest one, σ_min = sqrt(λ_min),
so no single direction dominates. The update is mean_i ĝ_i.

Directions with eigenvalues below a relative tolerance (a rank-deficient G, e.g. two identical
task gradients) are dropped, as the paper does with the matrix rank; σ_min is then the smallest
retained singular value.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from .core import GradientMethod, gram_matrix, no_state, weighted_sum


def alignment_matrix(
    gram: Float[Array, "tasks tasks"],
) -> tuple[Float[Array, "tasks tasks"], Float[Array, ""]]:
    """B with Ĝ = B G, and the condition number sqrt(λ_max / λ_min) of G before alignment."""
    eigenvalues, vectors = jnp.linalg.eigh(gram)
    largest = eigenvalues[-1]
    tolerance = largest * gram.shape[0] * jnp.finfo(gram.dtype).eps
    kept = eigenvalues > jnp.maximum(tolerance, jnp.finfo(gram.dtype).tiny)
    smallest = jnp.min(jnp.where(kept, eigenvalues, jnp.inf))
    inv_sqrt = jnp.where(kept, 1.0 / jnp.sqrt(jnp.where(kept, eigenvalues, 1.0)), 0.0)
    sigma_min = jnp.where(jnp.any(kept), jnp.sqrt(smallest), 0.0)
    b = sigma_min * (vectors * inv_sqrt) @ vectors.T
    condition = jnp.where(jnp.any(kept), jnp.sqrt(largest / smallest), 1.0)
    return b, condition


def aligned_mtl() -> GradientMethod:
    """Aligned-MTL with equal task weights, scaled by the smallest singular value."""

    def combine(task_grads, task_losses, state, key):
        del task_losses, key
        gram = gram_matrix(task_grads)
        b, condition = alignment_matrix(gram)
        weights = jnp.mean(b, axis=0)  # mean_i ĝ_i = Σ_k (Σ_i B_ik / T) g_k
        return weighted_sum(weights, task_grads), state, {"condition_number": condition}

    return GradientMethod(init=no_state, combine=combine)
