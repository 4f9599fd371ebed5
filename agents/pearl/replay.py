"""Ring buffers per (task, goal) slot: PEARL's RL and context buffers, so that a meta-batch element's
context and RL rows come from one goal."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Int

from mtrl.types import EnvSpec, Transition


@struct.dataclass
class GoalReplay:
    """Ring buffers per (task, goal) slot, slot = task · goals_per_task + goal: `data.x[slot, row, ...]`."""

    data: Transition
    insert_at: Int[Array, " slots"]
    size: Int[Array, " slots"]


def init_goal_replay(spec: EnvSpec, capacity: int) -> GoalReplay:
    s, c = spec.num_tasks * spec.goals_per_task, capacity
    data = Transition(
        obs=jnp.zeros((s, c, spec.obs_size), jnp.float32),
        action=jnp.zeros((s, c, spec.action_size), jnp.float32),
        reward=jnp.zeros((s, c), jnp.float32),
        next_obs=jnp.zeros((s, c, spec.obs_size), jnp.float32),
        terminated=jnp.zeros((s, c), jnp.float32),
        task_id=jnp.broadcast_to((jnp.arange(s, dtype=jnp.int32) // spec.goals_per_task)[:, None], (s, c)),
    )
    return GoalReplay(data, jnp.zeros(s, jnp.int32), jnp.zeros(s, jnp.int32))


def clear_slots(replay: GoalReplay, slots: Int[Array, " envs"]) -> GoalReplay:
    return replay.replace(insert_at=replay.insert_at.at[slots].set(0), size=replay.size.at[slots].set(0))


def add_episodes(replay: GoalReplay, slots: Int[Array, " envs"], episodes: Transition) -> GoalReplay:
    """Write each env's `[envs, T]` rows into its slot. Envs sharing a slot write one after the other
    (rank among earlier envs with that slot), so none overwrites another within one call."""
    num_slots, capacity = replay.size.shape[0], replay.data.reward.shape[1]
    length = episodes.reward.shape[1]
    same = slots[:, None] == slots[None, :]
    rank = jnp.sum(jnp.tril(same, k=-1), axis=1)
    rows = (replay.insert_at[slots] + rank * length)[:, None] + jnp.arange(length)
    rows = rows % capacity
    data = jax.tree.map(
        lambda buf, x: buf.at[slots[:, None], rows].set(x.astype(buf.dtype)), replay.data, episodes
    )
    count = jax.ops.segment_sum(jnp.full_like(slots, length), slots, num_segments=num_slots)
    return GoalReplay(data, (replay.insert_at + count) % capacity, jnp.minimum(replay.size + count, capacity))


def sample_rows(replay: GoalReplay, slots: Int[Array, " g"], key: jax.Array, n: int):
    """`n` uniform rows of each slot's filled part: `[g, n]` transitions, and a mask (0 for empty slots)."""
    size = replay.size[slots]
    rows = jax.random.randint(key, (slots.shape[0], n), 0, jnp.maximum(size, 1)[:, None])
    batch = jax.tree.map(lambda buf: buf[slots[:, None], rows], replay.data)
    return batch, jnp.broadcast_to((size > 0)[:, None], rows.shape).astype(jnp.float32)
