"""Goal schedules: an env keeps its goal for `episodes_per_goal` episodes, on every backend alike."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mtrl.envs.goals import goals_after_step, next_goal_indices

from mtrl import envs


def _goals_per_episode(env, episodes: int) -> np.ndarray:
    """Goal index of every env in each of its first `episodes` episodes: [episodes, envs]."""
    state, _ = env.reset(jax.random.key(7))
    action = jnp.zeros((env.spec.num_envs, env.spec.action_size))

    def body(state, _):
        goal = state.goal_index
        state, _ = env.step(state, action)
        return state, goal

    _, goals = jax.jit(lambda s: jax.lax.scan(body, s, length=episodes * env.spec.episode_length))(state)
    return np.asarray(goals)[:: env.spec.episode_length]


def test_sequential_blocks_of_episodes_walk_the_goals_in_steps_of_envs_per_task():
    env = envs.make("toy-ml", envs_per_task=2, goal_sampling="sequential", episodes_per_goal=3)
    goals = _goals_per_episode(env, 7)
    expected = [[0, 1]] * 3 + [[2, 3]] * 3 + [[4, 5]]
    np.testing.assert_array_equal(goals, expected)


def test_random_goals_are_held_for_a_block_then_redrawn():
    env = envs.make("toy", num_tasks=2, envs_per_task=3, episodes_per_goal=4)
    goals = _goals_per_episode(env, 12).reshape(3, 4, -1)
    assert (goals == goals[:, :1]).all()  # constant within each block of 4 episodes
    assert (goals[0] != goals[1]).any() and (goals[1] != goals[2]).any()  # new draws between blocks


def test_one_episode_per_goal_is_the_old_schedule():
    key = jax.random.key(3)
    episodes = jnp.array([0, 1, 2, 5], jnp.int32)
    ended = jnp.array([True, False, True, True])
    current = jnp.array([9, 9, 9, 9], jnp.int32)
    new = goals_after_step("random", key, episodes, ended, current, 2, 50)
    drawn = next_goal_indices("random", key, episodes, 2, 50)
    np.testing.assert_array_equal(new, jnp.where(ended, drawn, current))


def test_toy_ml_hides_the_goal_and_holds_out_test_goals():
    train, test = envs.make("toy-ml"), envs.make("toy-ml", split="test")
    assert train.spec.obs_size == 2 and train.spec.name == "toy-ml"
    assert not np.allclose(train.goals, test.goals)
    radius = np.linalg.norm(np.asarray(train.goals), axis=-1)
    np.testing.assert_allclose(radius, 0.7, rtol=1e-5)
    angles = np.arctan2(train.goals[..., 1], train.goals[..., 0])
    assert (angles >= -1e-6).all() and (angles <= np.pi + 1e-6).all()  # task 0's half circle


@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_bad_episodes_per_goal_is_one_line(value):
    with pytest.raises(ValueError, match=f"episodes_per_goal must be an int >= 1, got {value}"):
        envs.make("toy", episodes_per_goal=value)


def test_bad_toy_split_is_one_line():
    with pytest.raises(ValueError, match="unknown split 'test' for the toy env; valid: train"):
        envs.make("toy", split="test")


def test_metaworld_backends_hold_goals_alike():
    """ML1 reach-v3, official and native: the same goal per episode with 2 episodes per goal."""
    kwargs = dict(task="reach-v3", envs_per_task=2, episodes_per_goal=2)
    official = _goals_per_episode(envs.make("ML1", backend="official", **kwargs), 4)
    native = _goals_per_episode(envs.make("ML1", backend="native", **kwargs), 4)
    np.testing.assert_array_equal(official, native)
    assert (official[0] == official[1]).all() and (official[2] == official[3]).all()
