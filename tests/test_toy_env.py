"""The pure-JAX point mass: API contract, auto-reset semantics, goal sampling, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtrl import envs


def rollout(env, key, actions):
    state, first = env.reset(key)

    def body(state, action):
        state, step = env.step(state, action)
        return state, step

    _, steps = jax.jit(lambda s, a: jax.lax.scan(body, s, a))(state, actions)
    return first, steps


def test_shapes_match_spec_under_jit():
    env = envs.make("toy", envs_per_task=3, num_tasks=5)
    spec = env.spec
    actions = jnp.zeros((7, spec.num_envs, spec.action_size))
    first, steps = rollout(env, jax.random.key(0), actions)
    assert first.obs.shape == (spec.num_envs, spec.obs_size)
    assert steps.obs.shape == (7, spec.num_envs, spec.obs_size)
    assert steps.reward.shape == (7, spec.num_envs)
    np.testing.assert_array_equal(first.task_id, np.repeat(np.arange(5), 3))
    # the one-hot task id is the last num_tasks columns
    np.testing.assert_array_equal(first.obs[:, 2:].argmax(-1), first.task_id)
    assert np.isfinite(np.asarray(steps.obs)).all()


def test_same_step_auto_reset_keeps_final_obs():
    env = envs.make("toy", num_tasks=2)
    length = env.spec.episode_length
    actions = jnp.ones((length + 3, env.spec.num_envs, 2))
    _, steps = rollout(env, jax.random.key(1), actions)
    truncated = np.asarray(steps.truncated)
    assert truncated[length - 1].all() and truncated.sum() == env.spec.num_envs
    # final_obs is where the episode ended; obs is already the next episode's start (origin)
    np.testing.assert_allclose(steps.final_obs[length - 1, :, :2], 1.0)
    np.testing.assert_allclose(steps.obs[length - 1, :, :2], 0.0)
    # elsewhere the two agree
    np.testing.assert_array_equal(steps.final_obs[: length - 1], steps.obs[: length - 1])


def test_walking_to_the_goal_succeeds_and_wrong_way_fails():
    env = envs.make("toy", num_tasks=4)
    state, step = env.reset(jax.random.key(2))
    goal = env.goals[env.task_id, state.goal_index]
    for _ in range(20):
        direction = goal - state.pos
        state, step = env.step(state, jnp.clip(direction / env.config.step_size, -1, 1))
    assert np.asarray(step.success).all()
    state, step = env.reset(jax.random.key(2))
    for _ in range(20):
        state, step = env.step(state, -jnp.sign(goal))
    assert not np.asarray(step.success).any()


def test_same_key_same_run_different_key_different_goals():
    env = envs.make("toy", envs_per_task=4)
    actions = jax.random.uniform(jax.random.key(0), (120, env.spec.num_envs, 2), minval=-1)
    _, a = rollout(env, jax.random.key(5), actions)
    _, b = rollout(env, jax.random.key(5), actions)
    _, c = rollout(env, jax.random.key(6), actions)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a.reward, c.reward)


def test_sequential_goals_visit_every_goal_once():
    env = envs.make("toy", envs_per_task=10, goal_sampling="sequential")
    state, _ = env.reset(jax.random.key(0))
    seen = [np.asarray(state.goal_index)]
    for _ in range(4):
        state = state.replace(steps=jnp.full_like(state.steps, env.spec.episode_length - 1))
        state, _ = env.step(state, jnp.zeros((env.spec.num_envs, 2)))
        seen.append(np.asarray(state.goal_index))
    seen = np.stack(seen, axis=1).reshape(env.spec.num_tasks, -1)  # [tasks, envs*episodes]
    for goals in seen:
        assert sorted(goals.tolist()) == list(range(50))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="MT11"), "MT11"),
        (dict(name="toy", backend="official"), "official"),
        (dict(name="toy", goal_sampling="shuffled"), "shuffled"),
        (dict(name="toy", envs_per_task=0), "envs_per_task"),
    ],
)
def test_bad_input_is_one_clear_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        envs.make(**kwargs)
    assert "\n" not in str(info.value)
