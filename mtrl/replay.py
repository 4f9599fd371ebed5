"""Per-task replay that lives on the device and samples task-balanced batches.

Storage is one ring buffer per task, stacked on a leading task axis: `obs[task, slot, ...]`. The envs are
task-major with the same number of envs per task, so every vector step adds `envs_per_task` rows to every task
and one write pointer serves all tasks. Sampling draws `batch_per_task` rows from each task's filled part, so
every batch holds exactly the same number of rows from every task (MT-SAC/MOORE recipes: 128 per task).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from mtrl.types import EnvSpec, Transition


@struct.dataclass
class ReplayState:
    """Ring buffers `[tasks, capacity, ...]`, the next write slot and the number of filled slots."""

    data: Transition
    insert_at: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return self.data.reward.shape[1]


def init_replay(spec: EnvSpec, capacity_per_task: int) -> ReplayState:
    """Allocate empty buffers for every task of `spec`."""
    if capacity_per_task < spec.envs_per_task:
        raise ValueError(
            f"replay capacity per task ({capacity_per_task}) must be >= envs_per_task ({spec.envs_per_task})"
        )
    t, c = spec.num_tasks, capacity_per_task
    data = Transition(
        obs=jnp.zeros((t, c, spec.obs_size), jnp.float32),
        action=jnp.zeros((t, c, spec.action_size), jnp.float32),
        reward=jnp.zeros((t, c), jnp.float32),
        next_obs=jnp.zeros((t, c, spec.obs_size), jnp.float32),
        terminated=jnp.zeros((t, c), jnp.float32),
        task_id=jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32)[:, None], (t, c)),
    )
    return ReplayState(data=data, insert_at=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(replay: ReplayState, batch: Transition) -> ReplayState:
    """Write one vector step (`num_envs` task-major rows) into the per-task ring buffers."""
    num_tasks, capacity = replay.data.reward.shape
    per_task = batch.reward.shape[0] // num_tasks
    slots = (replay.insert_at + jnp.arange(per_task)) % capacity

    def write(buffer: jax.Array, rows: jax.Array) -> jax.Array:
        rows = rows.reshape(num_tasks, per_task, *rows.shape[1:]).astype(buffer.dtype)
        return buffer.at[:, slots].set(rows)

    return ReplayState(
        data=jax.tree.map(write, replay.data, batch),
        insert_at=(replay.insert_at + per_task) % capacity,
        size=jnp.minimum(replay.size + per_task, capacity),
    )


def sample(replay: ReplayState, key: jax.Array, batch_per_task: int) -> Transition:
    """Draw `batch_per_task` rows uniformly from each task's filled slots; rows come task-major."""
    num_tasks = replay.data.reward.shape[0]
    slots = jax.random.randint(key, (num_tasks, batch_per_task), 0, jnp.maximum(replay.size, 1))
    tasks = jnp.arange(num_tasks)[:, None]

    def gather(buffer: jax.Array) -> jax.Array:
        rows = buffer[tasks, slots]
        return rows.reshape(num_tasks * batch_per_task, *rows.shape[2:])

    return jax.tree.map(gather, replay.data)


def replay_bytes(spec: EnvSpec, capacity_per_task: int) -> int:
    """Bytes `init_replay` would allocate, to check before allocating."""
    per_row = 4 * (2 * spec.obs_size + spec.action_size + 3)
    return spec.num_tasks * capacity_per_task * per_row
