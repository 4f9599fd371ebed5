"""Per-task replay: ring-buffer writes land in the right task, sampling is task-balanced."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl import replay
from mtrl.types import EnvSpec, Transition

SPEC = EnvSpec(
    name="t",
    obs_size=3,
    action_size=2,
    task_names=("a", "b", "c"),
    envs_per_task=2,
    episode_length=10,
    goals_per_task=5,
)


def vector_step(value: float) -> Transition:
    """Rows for 3 tasks × 2 envs; obs encodes (task, env, step) so rows can be traced back."""
    n = SPEC.num_envs
    task = jnp.repeat(jnp.arange(3), 2)
    tag = 100.0 * task + value
    return Transition(
        obs=jnp.broadcast_to(tag[:, None], (n, 3)),
        action=jnp.zeros((n, 2)),
        reward=tag,
        next_obs=jnp.broadcast_to(tag[:, None], (n, 3)),
        terminated=jnp.zeros(n),
        task_id=task,
    )


def test_rows_go_to_their_task_and_ring_wraps():
    buffer = replay.init_replay(SPEC, capacity_per_task=5)
    for step in range(4):  # 8 rows per task into 5 slots: wraps
        buffer = replay.add(buffer, vector_step(step))
    assert int(buffer.size) == 5 and int(buffer.insert_at) == 8 % 5
    rewards = np.asarray(buffer.data.reward)
    for task in range(3):
        assert ((rewards[task] // 100) == task).all()
    # writes: step 0 → slots 0,1; step 1 → 2,3; step 2 → 4,0; step 3 → 1,2
    np.testing.assert_array_equal(rewards[1] - 100, [2, 3, 3, 1, 2])


def test_sampling_is_task_balanced_and_from_filled_slots():
    buffer = replay.init_replay(SPEC, capacity_per_task=50)
    for step in range(3):
        buffer = replay.add(buffer, vector_step(step + 1))
    batch = jax.jit(replay.sample, static_argnums=2)(buffer, jax.random.key(0), 16)
    assert batch.obs.shape == (48, 3)
    counts = np.bincount(np.asarray(batch.task_id), minlength=3)
    np.testing.assert_array_equal(counts, [16, 16, 16])
    reward = np.asarray(batch.reward)
    np.testing.assert_array_equal(reward // 100, np.asarray(batch.task_id))
    assert set((reward % 100).tolist()) <= {1.0, 2.0, 3.0}  # never an empty (zero) slot


def test_capacity_smaller_than_a_vector_step_is_refused():
    with pytest.raises(ValueError, match="capacity"):
        replay.init_replay(SPEC, capacity_per_task=1)


def test_replay_bytes_matches_allocation():
    buffer = replay.init_replay(SPEC, capacity_per_task=7)
    float_bytes = sum(x.nbytes for x in jax.tree.leaves(buffer.data) if x.dtype == jnp.float32)
    assert replay.replay_bytes(SPEC, 7) == float_bytes + 4 * 3 * 7  # + int32 task ids
