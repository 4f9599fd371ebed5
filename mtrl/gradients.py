"""The one gradient-step helper: loss → value_and_grad → optimiser update → apply.

Agents never write this sequence by hand, so gradient transforms (clipping, PCGrad, ...) slot in
through the optax `optimizer` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax
from jaxtyping import Array, Float

from mtrl.types import PyTree


class GradientStep(NamedTuple):
    """New params and optimiser state, plus the loss (before the step), its aux and |grad|."""

    params: PyTree
    opt_state: optax.OptState
    loss: Float[Array, ""]
    aux: Any
    grad_norm: Float[Array, ""]


def gradient_step(
    loss_fn: Callable[..., tuple[Float[Array, ""], Any]],
    optimizer: optax.GradientTransformation,
    params: PyTree,
    opt_state: optax.OptState,
    *args: Any,
) -> GradientStep:
    """Take one optimiser step on `loss_fn(params, *args) -> (loss, aux)` w.r.t. `params` only."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, *args)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return GradientStep(params, opt_state, loss, aux, optax.tree.norm(grads))
