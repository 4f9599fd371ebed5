"""The SAC core's hook for re-weighting tasks, in its own module so that the config (which names it) and
the update (which calls it) both import it without importing each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from jaxtyping import Array, Float

from mtrl.types import PyTree


class TaskWeighting(NamedTuple):
    """How an agent re-weights its tasks' losses inside the SAC update (PaCo, Soft Modularization).

    `weigh(task_losses, log_alphas) -> task weights` runs inside the critic's forward pass on its
    per-task losses (held fixed); the actor's loss takes the same weights, the temperatures' too
    when `weigh_alpha`. `finish(state, task_losses, task_weights, key) -> (state, metrics)` then
    completes the step (PaCo resets the compositions of the tasks it masked). An agent's config
    returns one from `task_weighting()`; None (the default) is the plain mean.
    """

    weigh: Callable[[Float[Array, " tasks"], Float[Array, " tasks"]], Float[Array, " tasks"]]
    weigh_alpha: bool
    finish: Callable[..., tuple[PyTree, dict[str, Float[Array, ""]]]]
