"""Task representations shared by the context-conditioned agents (CARE, the hypernetwork).

A task enters a network as one vector per task: a learned embedding of its id ('learned'), or a row of a
fixed table ('text': sentence embeddings of task descriptions, CARE §4.1). The table is data: the wiring
computes it before training (`mtrl.task_text`) and hands it over in the agent's config (`task_table`), so
nothing here reads files and nothing heavy runs under jit.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

TASK_EMBEDDINGS = ("learned", "text")
TaskTable = tuple[tuple[float, ...], ...]
"""A `[num_tasks, dim]` table as nested tuples: hashable, so it can sit in a config and a static field."""


def check_task_embedding(task_embedding: str) -> None:
    if task_embedding not in TASK_EMBEDDINGS:
        raise ValueError(f"task_embedding={task_embedding!r}; valid choices: {', '.join(TASK_EMBEDDINGS)}")


def fixed_table(
    task_embedding: str, task_table: TaskTable | None, task_names: Sequence[str]
) -> TaskTable | None:
    """The fixed table a 'text' agent embeds tasks with (None for 'learned'), checked against the tasks."""
    check_task_embedding(task_embedding)
    if task_embedding == "learned":
        return None
    if task_table is None:
        raise ValueError(
            "task_embedding='text' needs the task table in the agent's config (task_table); the wiring fills "
            "it from mtrl.task_text.text_embeddings(task_names)"
        )
    if len(task_table) != len(task_names):
        raise ValueError(f"task_table has {len(task_table)} rows for {len(task_names)} tasks")
    return task_table


class TaskEmbedding(nn.Module):
    """One vector per task: a learned `nn.Embed`, or rows of a fixed table (e.g. text embeddings).

    The fixed table is a tuple of tuples so the module stays hashable (a static state field).
    """

    num_tasks: int
    features: int
    table: TaskTable | None = None

    @nn.compact
    def __call__(self, task_id: Int[Array, " batch"]) -> Float[Array, "batch features"]:
        if self.table is None:
            return nn.Embed(self.num_tasks, self.features, name="embed")(task_id)
        table = jnp.asarray(self.table, jnp.float32)
        if table.shape[0] != self.num_tasks:
            raise ValueError(f"task table has {table.shape[0]} rows for {self.num_tasks} tasks")
        return table[task_id]


def as_table(array: np.ndarray) -> TaskTable:
    """A `[num_tasks, dim]` array as the hashable table `TaskEmbedding` takes."""
    return tuple(tuple(float(v) for v in row) for row in np.asarray(array))
