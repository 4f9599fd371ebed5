"""The `native` Meta-World backend: step-for-step parity with metaworld, batching, threads, errors.

Parity per task (`native_parity.check_task`) drives metaworld's own env with random or scripted-expert
actions, replays the actions through the native env, and requires obs and reward within 1e-5 and identical
success and truncation at every step. CI covers each MT10 task once: the scripted expert (it grasps, moves
the object and succeeds, where random actions mostly flail) over one full episode, its truncation, the reset
to the next goal and 10 steps of it; random actions on all ten tasks at once, across random resets, are the
batched test below. `pytest -m slow` covers all 50 tasks, both policies, two seeds, three episodes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from metaworld import env_dict
from mtrl.envs import make
from mtrl.envs.metaworld import make_metaworld
from mtrl.envs.metaworld.native import get_port, ported_tasks
from native_parity import EPISODE, check_task

ALL_TASKS = tuple(env_dict.ALL_V3_ENVIRONMENTS)
MT10_TASKS = tuple(env_dict.MT10_V3)


def scan_rollout(env, actions, key=0):
    state, first = env.reset(jax.random.key(key))
    final_state, steps = jax.jit(lambda s, a: jax.lax.scan(env.step, s, a))(state, jnp.asarray(actions))
    return first, jax.device_get(steps), final_state


def random_actions(steps, envs, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (steps, envs, 4)).astype(np.float32)


@pytest.mark.parametrize("task", MT10_TASKS)
def test_parity_with_metaworld_step_for_step(task):
    result = check_task(task, policy="scripted", steps=EPISODE + 10)
    assert result.ok, str(result)
    assert result.success_rate_native == result.success_rate_reference


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("policy", ["random", "scripted"])
@pytest.mark.parametrize("task", ALL_TASKS)
def test_parity_with_metaworld_all_tasks(task, policy, seed):
    result = check_task(task, policy=policy, seed=seed, steps=3 * EPISODE + 10)
    assert result.ok, str(result)
    assert result.success_rate_native == result.success_rate_reference


def test_every_metaworld_task_is_ported():
    assert ported_tasks() == tuple(sorted(ALL_TASKS))


def test_batched_mt10_matches_the_official_backend_across_random_resets_at_horizon_150():
    """Ten tasks in one reply, two envs each, random goals at each reset: the layout and bookkeeping; at the
    MOORE/CARE horizon, truncation exactly every 150 steps on both backends. (Metaworld's own 500 is
    crossed by the per-task parity above.)"""
    actions = random_actions(2 * 150 + 5, 20)
    runs = [
        scan_rollout(
            make_metaworld("MT10", envs_per_task=2, seed=3, backend=b, max_episode_steps=150), actions
        )
        for b in ("official", "native")
    ]
    (ref_first, ref, ref_state), (first, ours, state) = runs
    expected = np.zeros((2 * 150 + 5, 20), bool)
    expected[[149, 299]] = True
    np.testing.assert_array_equal(ref.truncated, expected)
    np.testing.assert_array_equal(ours.truncated, expected)
    np.testing.assert_array_equal(state.steps, np.full(20, 5))
    np.testing.assert_array_equal(state.goal_index, ref_state.goal_index)
    np.testing.assert_allclose(first.obs, ref_first.obs, atol=1e-5)
    for field in ("obs", "final_obs"):
        np.testing.assert_allclose(getattr(ours, field), getattr(ref, field), atol=1e-5, err_msg=field)
    # rewards: 1e-5 but for rare ill-conditioned steps (see native_parity.reward_of_rounded_state)
    reward_error = np.abs(ours.reward - ref.reward)
    assert reward_error.max() < 2e-4 and np.mean(reward_error > 1e-5) < 1e-3, reward_error.max()
    for field in ("success", "terminated", "task_id"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(ref, field), err_msg=field)
    # a new episode starts where the old one was cut: the reset observation differs from the final one
    assert not np.allclose(ref.obs[149], ref.final_obs[149])


def test_thread_count_does_not_change_a_single_bit():
    actions = random_actions(60, 4)
    runs = [
        scan_rollout(
            make_metaworld("MT1", task="pick-place-v3", envs_per_task=4, backend="native", threads=t), actions
        )
        for t in (1, 3)
    ]
    for x, y in zip(jax.tree.leaves(runs[0][:2]), jax.tree.leaves(runs[1][:2]), strict=True):
        np.testing.assert_array_equal(x, y)


def test_simulation_blow_up_in_one_env_is_handled_as_metaworld_does_and_spares_the_others(
    tmp_path, monkeypatch
):
    """MuJoCo resets an env whose state goes bad (with a warning); the other envs are untouched."""
    monkeypatch.chdir(tmp_path)  # MuJoCo's warning also goes to ./MUJOCO_LOG.TXT
    actions = random_actions(40, 2)
    outcome = {}
    for backend in ("official", "native", "native-clean"):
        env = make_metaworld(
            "MT1", task="pick-place-v3", envs_per_task=2, backend=backend.removesuffix("-clean")
        )
        state, _ = env.reset(jax.random.key(0))
        step = jax.jit(env.step)
        steps = []
        for t in range(len(actions)):
            if t == 20 and backend != "native-clean":
                env.host.envs[0].data.qvel[:] = np.nan
            state, ts = step(state, actions[t])
            steps.append(jax.device_get(ts))
        outcome[backend] = jax.tree.map(lambda *x: np.stack(x), *steps)
    ref, ours, clean = outcome["official"], outcome["native"], outcome["native-clean"]
    np.testing.assert_allclose(ours.obs, ref.obs, atol=1e-5)
    np.testing.assert_allclose(ours.reward, ref.reward, atol=1e-5)
    assert not np.allclose(ours.obs[21:, 0], clean.obs[21:, 0])  # env 0 was reset by MuJoCo
    np.testing.assert_array_equal(ours.obs[:, 1], clean.obs[:, 1])  # env 1 never noticed
    assert np.isfinite(ours.obs).all()


def test_stale_state_is_refused():
    env = make_metaworld("MT1", task="reach-v3", backend="native")
    state, _ = env.reset(jax.random.key(0))
    env.step(state, jnp.zeros((1, 4)))
    with pytest.raises(Exception, match="out of sync"):
        jax.block_until_ready(env.step(state, jnp.zeros((1, 4))))


def test_ml_benchmark_hides_the_goal_on_native_too():
    env = make("ML1", task="reach-v3", split="test", backend="native")
    first, steps, _ = scan_rollout(env, random_actions(5, 1))
    assert env.spec.obs_size == 39
    assert not first.obs[:, 36:].any() and not steps.obs[:, :, 36:].any()


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"backend": "fast"}, "'fast'"),
        ({"backend": "native", "envs_per_task": 0}, "envs_per_task"),
        ({"backend": "native", "task": "reach-v9"}, "reach-v9"),
        ({"backend": "native", "reward_version": "v1"}, "'v1' is not available on the native backend"),
        ({"backend": "official", "reward_version": "v3"}, "valid: v2, v1"),
        ({"backend": "native", "max_episode_steps": 501}, "max_episode_steps must be an int in 1..500"),
        ({"backend": "official", "max_episode_steps": 0}, "got 0"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(kwargs, bad):
    kwargs = {"task": "reach-v3", **kwargs}
    with pytest.raises(ValueError, match=bad) as error:
        make("MT1", **kwargs)
    assert "\n" not in str(error.value)


def test_a_task_without_port_is_named_with_the_ported_ones():
    with pytest.raises(ValueError, match="no native port; ported tasks: ") as error:
        get_port("juggle-v3")
    assert "\n" not in str(error.value)


def test_an_unstable_env_is_handled_as_metaworld_does_and_leaves_the_others_alone():
    """Blow up one env's velocities mid-episode: MuJoCo resets that simulation (metaworld 3.1.1 steps on
    from there, its own instability flag is never set); both backends flag the step `unstable` in that row
    only, agree with each other on it, and every other env steps exactly as it would have."""
    actions = random_actions(30, 10, seed=4)
    blown = 3  # door-open
    runs = {}
    for name, backend, corrupt in [("official", "official", True), ("native", "native", True),
                                   ("clean", "native", False)]:  # fmt: skip
        env = make_metaworld("MT10", seed=1, backend=backend)
        state, _ = env.reset(jax.random.key(0))
        step = jax.jit(env.step)
        for action in actions[:10]:
            state, _ = step(state, jnp.asarray(action))
        if corrupt:
            env.host.envs[blown].data.qvel[:] = 1e300
        runs[name] = []
        for action in actions[10:]:
            state, timestep = step(state, jnp.asarray(action))
            runs[name].append(jax.device_get(timestep))
    stacked = {name: jax.tree.map(lambda *xs: np.stack(xs), *steps) for name, steps in runs.items()}
    official, native, clean = (stacked[n].unstable for n in ("official", "native", "clean"))
    expected = np.zeros_like(official)
    expected[0, blown] = True
    np.testing.assert_array_equal(official, expected)
    np.testing.assert_array_equal(native, expected)
    assert not clean.any()
    for field in ("obs", "reward", "success"):
        got = {name: getattr(steps, field) for name, steps in stacked.items()}
        np.testing.assert_allclose(got["native"], got["official"], atol=1e-5)  # the blown env too
        others = np.arange(10) != blown
        np.testing.assert_array_equal(got["native"][:, others], got["clean"][:, others])
