"""The `official` Meta-World backend: parity with metaworld, seeding, goal sampling, specs, errors.

The reference envs are built here with metaworld's public API only (benchmark class, env class,
`set_task`, `reset`, `step`, one-hot appended by hand), independently of the backend under test.
"""

import copy
import functools

import jax
import jax.numpy as jnp
import metaworld
import numpy as np
import pytest
from metaworld.policies import ENV_POLICY_MAP
from mtrl.envs.metaworld import BENCHMARKS, make_metaworld, next_goal_indices, task_names

make_official = functools.partial(make_metaworld, backend="official")  # the default is native

EPISODE = 500
EXTRA = 20  # steps into the second episode, so every parity run crosses one auto-reset


def scan_rollout(env, state, actions):
    """Step `env` through `actions` [time, envs, 4] inside one jitted lax.scan."""

    def body(state, action):
        return env.step(state, action)

    return jax.jit(lambda s, a: jax.lax.scan(body, s, a))(state, actions)


def scripted_actions(env_cls, goal, task, key=0):
    """One episode of metaworld's scripted policy plus noise, so the comparison sees success."""
    rng = np.random.default_rng(key)
    policy = ENV_POLICY_MAP[task]()
    env = env_cls(reward_function_version="v2")
    env.set_task(goal)
    obs, _ = env.reset()
    actions = np.empty((EPISODE, 4), np.float32)
    for t in range(EPISODE):
        actions[t] = np.clip(policy.get_action(obs) + 0.1 * rng.standard_normal(4), -1, 1)
        obs, *_ = env.step(actions[t])
    return actions


def reference_rollout(env_cls, goals, goal_indices, actions):
    """Step one metaworld env through `actions` [time, 4]; episode k uses goals[goal_indices[k]].

    Returns the first obs and per-step records laid out like our TimeStep (same-step reset).
    """
    env = env_cls(reward_function_version="v2")
    env.set_task(goals[goal_indices[0]])
    first_obs, _ = env.reset()
    records = {"obs": [], "final_obs": [], "reward": [], "success": [], "truncated": []}
    for t in range(len(actions)):
        obs, reward, terminated, truncated, info = env.step(actions[t])
        assert not terminated
        records["final_obs"].append(obs)
        records["reward"].append(reward)
        records["success"].append(bool(info["success"]))
        records["truncated"].append(truncated)
        if truncated:
            env.set_task(goals[goal_indices[(t + 1) // EPISODE]])
            obs, _ = env.reset()
        records["obs"].append(obs)
    return first_obs, {k: np.asarray(v) for k, v in records.items()}


def with_one_hot(obs, one_hot):
    """Append the one-hot task id to metaworld obs [..., 39], as OneHotWrapper does; as float32."""
    one_hot = np.broadcast_to(one_hot, (*obs.shape[:-1], len(one_hot)))
    return np.concatenate([obs, one_hot], axis=-1).astype(np.float32)


def assert_parity(ours_first, ours, ref_first, ref, env_index, one_hot):
    """Compare one env of our (scan-stacked) TimeSteps with the reference records, exactly."""
    np.testing.assert_array_equal(ours_first.obs[env_index], with_one_hot(ref_first, one_hot))
    for field in ("obs", "final_obs"):
        expected = with_one_hot(ref[field], one_hot)
        np.testing.assert_array_equal(getattr(ours, field)[:, env_index], expected, err_msg=field)
    np.testing.assert_array_equal(ours.reward[:, env_index], ref["reward"].astype(np.float32))
    np.testing.assert_array_equal(ours.success[:, env_index], ref["success"])
    np.testing.assert_array_equal(ours.truncated[:, env_index], ref["truncated"])
    assert not np.asarray(ours.terminated).any()


@pytest.mark.filterwarnings(r"ignore:Constant\(s\) may be too high")
@pytest.mark.parametrize("task", ["reach-v3", "pick-place-v3"])
def test_parity_with_metaworld_across_an_episode_boundary(task):
    seed = 3
    env = make_official("MT1", task=task, seed=seed)
    state, first = env.reset(jax.random.key(7))
    bench = metaworld.MT1(task, seed=seed)
    env_cls = bench.train_classes[task]
    goals = [g for g in bench.train_tasks if g.env_name == task]
    first_goal = int(state.goal_index[0])
    # episode one follows the scripted policy, so success is compared too; then random actions
    random_actions = np.random.default_rng(0).uniform(-1, 1, (EXTRA, 4)).astype(np.float32)
    actions = np.concatenate([scripted_actions(env_cls, goals[first_goal], task), random_actions])

    final_state, steps = scan_rollout(env, state, jnp.asarray(actions[:, None]))
    second_goal = int(final_state.goal_index[0])  # drawn by our env at the boundary
    ref_first, ref = reference_rollout(env_cls, goals, [first_goal, second_goal], actions)
    assert ref["success"][:EPISODE].any(), "the scripted policy should succeed in episode one"
    assert ref["truncated"][EPISODE - 1] and ref["truncated"].sum() == 1
    assert_parity(first, steps, ref_first, ref, 0, one_hot=np.ones(1))
    assert int(final_state.steps[0]) == EXTRA and int(final_state.episodes[0]) == 1


@pytest.mark.slow
def test_parity_mt10_all_tasks_random_actions():
    seed = 1
    env = make_official("MT10", seed=seed)
    state, first = env.reset(jax.random.key(0))
    actions = np.random.default_rng(1).uniform(-1, 1, (EPISODE + EXTRA, 10, 4)).astype(np.float32)
    final_state, steps = scan_rollout(env, state, jnp.asarray(actions))
    bench = metaworld.MT10(seed=seed)
    for i, (name, env_cls) in enumerate(bench.train_classes.items()):
        goals = [g for g in bench.train_tasks if g.env_name == name]
        goal_indices = [int(state.goal_index[i]), int(final_state.goal_index[i])]
        ref_first, ref = reference_rollout(env_cls, goals, goal_indices, actions[:, i])
        assert_parity(first, steps, ref_first, ref, i, one_hot=np.eye(10)[i])


def test_same_seed_and_key_give_identical_runs_and_other_keys_other_goals():
    actions = jax.random.uniform(jax.random.key(9), (EPISODE + 5, 2, 4), minval=-1, maxval=1)

    def run(key):
        env = make_official("MT1", task="reach-v3", seed=5, envs_per_task=2)
        state, first = env.reset(key)
        final_state, steps = scan_rollout(env, state, actions)
        final_state = final_state.replace(key=jax.random.key_data(final_state.key))
        return state.goal_index, first, final_state, steps

    first_run, second_run = run(jax.random.key(11)), run(jax.random.key(11))
    for x, y in zip(jax.tree.leaves(first_run), jax.tree.leaves(second_run), strict=True):
        np.testing.assert_array_equal(x, y)

    env = make_official("MT1", task="reach-v3", seed=5, envs_per_task=4)
    goal_draws = {tuple(np.asarray(env.reset(jax.random.key(k))[0].goal_index)) for k in range(3)}
    assert len(goal_draws) == 3


def test_host_state_continues_a_fresh_env_exactly_across_an_episode_boundary():
    """What `mtrl train --resume` does for this backend: a new env (a new process's), given the JAX state and
    the `host_state()` of the moment the checkpoint was written, steps on exactly as the env that never
    stopped, through the next auto-reset."""
    horizon = 30
    actions = jax.random.uniform(jax.random.key(3), (2 * horizon, 2, 4), minval=-1, maxval=1)
    make = functools.partial(make_official, "MT1", task="reach-v3", seed=5, envs_per_task=2)
    env = make(max_episode_steps=horizon)
    state, _ = env.reset(jax.random.key(1))
    state, _ = scan_rollout(env, state, actions[:20])  # mid-episode
    saved = copy.deepcopy(env.host_state())  # as written to disk: later steps must not change it
    _, uninterrupted = scan_rollout(env, state, actions[20:])
    fresh = make(max_episode_steps=horizon)
    fresh.reset(jax.random.key(2))  # elsewhere, as a resumed run's env is before it is restored
    fresh.restore_host_state(state, saved)
    _, resumed = scan_rollout(fresh, state, actions[20:])
    assert np.asarray(resumed.truncated).any()  # the comparison crosses an episode boundary
    for field in ("obs", "final_obs", "reward", "success", "truncated"):
        np.testing.assert_array_equal(getattr(resumed, field), getattr(uninterrupted, field), err_msg=field)


def test_stale_state_is_refused():
    env = make_official("MT1", task="reach-v3")
    state, _ = env.reset(jax.random.key(0))
    env.step(state, jnp.zeros((1, 4)))
    with pytest.raises(Exception, match="out of sync"):
        jax.block_until_ready(env.step(state, jnp.zeros((1, 4))))


def test_unstable_step_is_passed_through_for_that_env_only():
    env = make_official("MT1", task="reach-v3", envs_per_task=2)
    state, _ = env.reset(jax.random.key(0))
    action = jnp.full((2, 4), 0.5)
    state, before = env.step(state, action)
    # metaworld 3.1.1 never sets this flag itself; force its "last stable obs" path on env 0
    env.host.envs[0]._did_see_sim_exception = True
    state, after = env.step(state, action)
    np.testing.assert_array_equal(after.obs[0], before.obs[0])
    assert float(after.reward[0]) == 0.0 and not bool(after.success[0])
    assert float(after.reward[1]) > 0.0
    assert not np.array_equal(after.obs[1], before.obs[1])


@pytest.mark.parametrize("envs_per_task", [1, 2, 5, 10, 25, 50])
def test_sequential_goals_visit_every_goal_once(envs_per_task):
    num_tasks, goals = 3, 50
    episodes = np.arange(goals // envs_per_task)[:, None] * np.ones(num_tasks * envs_per_task, int)
    key = jax.random.key(0)
    drawn = jax.vmap(lambda e: next_goal_indices("sequential", key, e, envs_per_task, 50))(episodes)
    drawn = np.asarray(drawn).reshape(len(episodes), num_tasks, envs_per_task)
    for t in range(num_tasks):
        assert sorted(drawn[:, t].ravel()) == list(range(goals))


def test_sequential_goal_sampling_through_the_env():
    env = make_official("MT1", task="reach-v3", envs_per_task=2, goal_sampling="sequential")
    state, first = env.reset(jax.random.key(0))
    np.testing.assert_array_equal(state.goal_index, [0, 1])
    final_state, steps = scan_rollout(env, state, jnp.zeros((EPISODE + 1, 2, 4)))
    np.testing.assert_array_equal(final_state.goal_index, [2, 3])
    # the goal in obs changes with the goal configuration (reach goals are all distinct)
    assert not np.array_equal(steps.obs[EPISODE - 1, :, 36:39], first.obs[:, 36:39])


def test_mt_spec_and_shapes_under_jit():
    env = make_official("MT1", task="push-v3", envs_per_task=3)
    spec = env.spec
    assert (spec.name, spec.obs_size, spec.action_size) == ("MT1/push-v3", 40, 4)
    assert (spec.num_envs, spec.episode_length, spec.goals_per_task) == (3, 500, 50)
    state, first = jax.jit(env.reset)(jax.random.key(0))
    state, steps = scan_rollout(env, state, jnp.zeros((4, 3, 4)))
    assert first.obs.shape == (3, 40) and first.obs.dtype == jnp.float32
    assert steps.obs.shape == steps.final_obs.shape == (4, 3, 40)
    assert steps.reward.shape == steps.success.shape == steps.truncated.shape == (4, 3)
    assert steps.success.dtype == jnp.bool_ and steps.reward.dtype == jnp.float32
    np.testing.assert_array_equal(steps.task_id[0], [0, 0, 0])
    np.testing.assert_array_equal(steps.obs[..., 39], 1.0)
    assert np.isfinite(np.asarray(steps.obs)).all()


def test_ml1_hides_the_goal_and_has_no_one_hot():
    env = make_official("ML1", task="reach-v3", split="test", envs_per_task=2)
    assert env.spec.name == "ML1/reach-v3/test" and env.spec.obs_size == 39
    state, first = env.reset(jax.random.key(0))
    state, steps = scan_rollout(env, state, jnp.ones((3, 2, 4)))
    assert first.obs.shape == (2, 39) and steps.obs.shape == (3, 2, 39)
    np.testing.assert_array_equal(first.obs[:, 36:39], 0.0)
    np.testing.assert_array_equal(steps.obs[..., 36:39], 0.0)


def test_ml10_test_split_is_metaworlds_held_out_tasks():
    expected = (
        "drawer-open-v3",
        "door-close-v3",
        "shelf-place-v3",
        "sweep-into-v3",
        "lever-pull-v3",
    )
    assert task_names("ML10", split="test") == expected
    assert len(task_names("ML10")) == 10 and not set(task_names("ML10")) & set(expected)
    assert task_names("ML45", split="test") == (
        "bin-picking-v3",
        "box-close-v3",
        "hand-insert-v3",
        "door-lock-v3",
        "door-unlock-v3",
    )
    assert task_names("MT10")[:3] == ("reach-v3", "push-v3", "pick-place-v3")
    assert len(task_names("MT50")) == 50

    env = make_official("ML10", split="test")
    assert env.spec.task_names == expected
    assert (env.spec.name, env.spec.obs_size, env.spec.num_envs) == ("ML10/test", 39, 5)
    state, first = jax.jit(env.reset)(jax.random.key(0))
    state, steps = scan_rollout(env, state, jnp.zeros((2, 5, 4)))
    np.testing.assert_array_equal(steps.task_id[0], np.arange(5))
    np.testing.assert_array_equal(steps.obs[..., 36:39], 0.0)


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"benchmark": "MT11"}, "MT11"),
        ({"benchmark": "MT1", "task": "reech-v3"}, "reech-v3"),
        ({"benchmark": "ML1"}, "task="),
        ({"benchmark": "MT10", "task": "reach-v3"}, "reach-v3"),
        ({"benchmark": "ML10", "split": "valid"}, "valid"),
        ({"benchmark": "MT10", "split": "test"}, "test"),
        ({"benchmark": "MT10", "goal_sampling": "cyclic"}, "cyclic"),
        ({"benchmark": "MT10", "envs_per_task": 0}, "0"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(kwargs, bad):
    with pytest.raises(ValueError) as info:
        make_official(**kwargs)
    message = str(info.value)
    assert bad in message and "\n" not in message


def test_benchmark_names_are_exported():
    assert BENCHMARKS == ("MT1", "MT10", "MT25", "MT50", "ML1", "ML10", "ML25", "ML45")


def test_reward_version_v1_is_metaworlds_v1():
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 1, 4)).astype(np.float32)
    env = make_official("MT1", task="reach-v3", reward_version="v1")
    _, steps = scan_rollout(env, env.reset(jax.random.key(0))[0], jnp.asarray(actions))
    tasks = metaworld.MT1("reach-v3", seed=0)
    reference = tasks.train_classes["reach-v3"](reward_function_version="v1")
    reference.seed(0)
    reference.set_task(tasks.train_tasks[int(env.reset(jax.random.key(0))[0].goal_index[0])])
    reference.reset()
    rewards = [reference.step(a[0])[1] for a in actions]
    np.testing.assert_allclose(steps.reward[:, 0], rewards, rtol=1e-6)
    assert max(rewards) > 10  # v1 rewards are not on v2's [0, 10] scale
