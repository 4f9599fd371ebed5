"""What every multi-task gradient method shares: the interface, per-task gradients, the Gram matrix.

A method sees one gradient per task (a pytree whose leaves carry a leading task axis) and the task
losses, and returns one combined gradient for the optimiser. Most methods only need the T×T Gram
matrix of the task gradients and answer with task weights, so the P-dimensional work is one Gram
product and one weighted sum, whatever the method.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from mtrl.types import PyTree

Metrics = dict[str, Float[Array, ""]]
# A Gram matrix decides the sign of a dot product: never let a GPU round it through TF32/bf16.
HIGHEST = jax.lax.Precision.HIGHEST


class GradientMethod(NamedTuple):
    """A multi-task gradient transformation, optax-like, with its state kept by the caller.

    `init(num_tasks) -> state`;
    `combine(task_grads, task_losses, state, key) -> (grad, state, metrics)`, `task_grads` with a
    leading task axis on every leaf, `task_losses` of shape [tasks];
    `after_step(state, task_losses_after) -> state` or None: methods that learn from how much each
    loss fell in the step (FAMO) see the losses of the same batch after the optimiser step;
    `weigh(task_losses, state) -> (weights, state, metrics)` or None: a method whose combination is
    Σ_i w_i g_i with weights from the losses alone (FAMO) gives them here, and the step then takes
    one backward pass of Σ_i w_i L_i instead of T (its `combine` stays for callers that have the
    task gradients anyway).
    """

    init: Callable[[int], PyTree]
    combine: Callable[[PyTree, Float[Array, " tasks"], PyTree, jax.Array], tuple[PyTree, PyTree, Metrics]]
    after_step: Callable[[PyTree, Float[Array, " tasks"]], PyTree] | None = None
    weigh: (
        Callable[[Float[Array, " tasks"], PyTree], tuple[Float[Array, " tasks"], PyTree, Metrics]] | None
    ) = None


def no_state(num_tasks: int) -> tuple[()]:
    """The state of a stateless method: an empty pytree, free under vmap and orbax."""
    del num_tasks
    return ()


def mean() -> GradientMethod:
    """Average the task gradients: the gradient of the mean loss, what plain MT-SAC does."""

    def combine(task_grads, task_losses, state, key):
        del task_losses, key
        return jax.tree.map(lambda g: jnp.mean(g, axis=0), task_grads), state, {}

    return GradientMethod(init=no_state, combine=combine)


def gram_matrix(task_grads: PyTree) -> Float[Array, "tasks tasks"]:
    """G Gᵀ: every pair of task gradients' dot product, summed over the pytree's leaves."""
    leaves = [g.reshape(g.shape[0], -1) for g in jax.tree.leaves(task_grads)]
    return sum(jnp.dot(g, g.T, precision=HIGHEST) for g in leaves)


def weighted_sum(weights: Float[Array, " tasks"], task_grads: PyTree) -> PyTree:
    """Σ_i w_i g_i, leaf by leaf."""
    return jax.tree.map(
        lambda g: jnp.tensordot(weights.astype(g.dtype), g, axes=1, precision=HIGHEST), task_grads
    )


def conflict_fraction(gram: Float[Array, "tasks tasks"]) -> Float[Array, ""]:
    """Fraction of task pairs whose gradients conflict (negative dot product)."""
    num_tasks = gram.shape[0]
    if num_tasks < 2:
        return jnp.zeros((), gram.dtype)
    upper = jnp.triu(jnp.ones_like(gram, dtype=bool), k=1)
    return jnp.sum((gram < 0) & upper) / (num_tasks * (num_tasks - 1) / 2)


def entropy(weights: Float[Array, " tasks"]) -> Float[Array, ""]:
    """Shannon entropy of non-negative weights normalised to sum 1 (log T when uniform)."""
    p = weights / jnp.sum(weights)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))


def split_tasks(tree: PyTree, num_tasks: int) -> PyTree:
    """Reshape task-major rows `[tasks * B, ...]` into `[tasks, B, ...]`.

    The replay samples task-balanced batches with task t's rows at `[t*B:(t+1)*B]`
    (`mtrl.replay.sample`); a batch in any other order would give per-chunk, not per-task,
    gradients, so only the shape can be (and is) checked here.
    """

    def split(x: jax.Array) -> jax.Array:
        if x.shape[0] % num_tasks:
            raise ValueError(
                f"batch of {x.shape[0]} rows is not task-balanced over {num_tasks} tasks; per-task "
                "gradient methods need the replay's task-major batches"
            )
        return x.reshape(num_tasks, x.shape[0] // num_tasks, *x.shape[1:])

    return jax.tree.map(split, tree)


def task_losses_and_grads(
    loss_fn: Callable[..., tuple[Float[Array, ""], Any]],
    params: PyTree,
    task_batch: PyTree,
    task_keys: jax.Array,
) -> tuple[tuple[Float[Array, " tasks"], Any], PyTree]:
    """Each task's loss, aux and gradient in one vmapped pass over the task axis.

    `loss_fn(params, batch, key) -> (loss, aux)` sees one task's rows at a time; the forward and
    backward passes are the full batch's, only the parameter gradients keep a task axis.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    return jax.vmap(grad_fn, in_axes=(None, 0, 0))(params, task_batch, task_keys)


class TaskGradientStep(NamedTuple):
    """New params, optimiser and method states, the mean task loss, aux per task, |combined grad|."""

    params: PyTree
    opt_state: optax.OptState
    loss: Float[Array, ""]
    aux: Any
    grad_norm: Float[Array, ""]
    method_state: PyTree
    metrics: Metrics


def task_gradient_step(
    loss_fn: Callable[..., tuple[Float[Array, ""], Any]],
    method: GradientMethod,
    optimizer: optax.GradientTransformation,
    params: PyTree,
    opt_state: optax.OptState,
    method_state: PyTree,
    batch: PyTree,
    key: jax.Array,
    num_tasks: int,
) -> TaskGradientStep:
    """One optimiser step on the method's combination of the per-task gradients of `loss_fn`.

    The per-task counterpart of `mtrl.gradients.gradient_step`: split the batch by task, vmap the
    loss gradient over tasks (each task its own key), combine, then the optimiser as usual. A
    method with `weigh` gets its weighted sum from one backward pass instead.
    """
    loss_key, method_key = jax.random.split(key)
    task_batch = split_tasks(batch, num_tasks)
    task_keys = jax.random.split(loss_key, num_tasks)
    if method.weigh is None:
        (losses, aux), task_grads = task_losses_and_grads(loss_fn, params, task_batch, task_keys)
        grads, method_state, metrics = method.combine(task_grads, losses, method_state, method_key)
    else:

        def weighted_loss(params):
            losses, aux = jax.vmap(loss_fn, in_axes=(None, 0, 0))(params, task_batch, task_keys)
            weights, state, metrics = method.weigh(jax.lax.stop_gradient(losses), method_state)
            return jnp.sum(jax.lax.stop_gradient(weights) * losses), (losses, aux, state, metrics)

        (_, (losses, aux, method_state, metrics)), grads = jax.value_and_grad(weighted_loss, has_aux=True)(
            params
        )
    updates, opt_state = optimizer.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    if method.after_step is not None:
        # Same rows, same keys, so the same targets and noise: only the parameters changed.
        after, _ = jax.vmap(loss_fn, in_axes=(None, 0, 0))(new_params, task_batch, task_keys)
        method_state = method.after_step(method_state, jax.lax.stop_gradient(after))
    grad_norm = optax.tree.norm(grads)
    return TaskGradientStep(new_params, opt_state, jnp.mean(losses), aux, grad_norm, method_state, metrics)


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """One-line ValueError for a hyperparameter that must be positive (or non-negative)."""
    ok = value >= 0 if allow_zero else value > 0
    if not (ok and math.isfinite(value)):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
