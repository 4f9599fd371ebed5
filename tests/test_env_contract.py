"""The env contract, checked on every env `make` builds: jitted reset and scanned steps, a TimeStep
whose shapes and dtypes follow the spec, finite values, task-major task ids and the obs layout.

Each env is built and rolled out once per module (the `rollout` fixture); the tests only read it.
MT25, MT50, ML25 and ML45 take 40+ s each to build, so they run only with `pytest -m slow`.
"""

from typing import NamedTuple

import jax
import numpy as np
import pytest
from mtrl.envs import make

from mtrl.types import EnvSpec, TimeStep

NUM_STEPS = 20
MW_OBS_SIZE = 39  # metaworld's own observation; MT benchmarks append the one-hot task id
MW_GOAL_COLUMNS = slice(36, 39)  # hidden (zeroed) in ML benchmarks
MW_REWARD_RANGE = (0.0, 10.0)  # metaworld's v2 reward functions


class EnvCase(NamedTuple):
    """How to build one env, and which obs layout it promises."""

    name: str
    kwargs: dict
    layout: str  # "one_hot": task id one-hot in the last columns; "hidden_goal": ML, goal zeroed


def case(name, layout, *, slow=False, **kwargs):
    """One parametrisation of the contract tests: `make(name, **kwargs)`, id from its arguments."""
    case_id = "-".join([name, *(f"{k}={v}" for k, v in kwargs.items())])
    marks = [pytest.mark.slow] if slow else []
    return pytest.param(EnvCase(name, kwargs, layout), id=case_id, marks=marks)


CASES = [
    case("toy", "one_hot"),
    case("toy", "one_hot", envs_per_task=3, num_tasks=5),
    case("MT1", "one_hot", task="reach-v3", backend="official"),
    case("MT10", "one_hot", backend="official"),
    case("ML1", "hidden_goal", task="reach-v3", split="train", backend="official"),
    case("ML1", "hidden_goal", task="reach-v3", split="test", backend="official"),
    case("ML10", "hidden_goal", split="train", backend="official"),
    case("ML10", "hidden_goal", split="test", envs_per_task=2, backend="official"),
    case("MT10", "one_hot", backend="native", envs_per_task=2),
    case("ML10", "hidden_goal", split="train", backend="native"),
    case("ML10", "hidden_goal", split="test", backend="native"),
    case("MT25", "one_hot", slow=True, backend="official"),
    case("MT50", "one_hot", slow=True, backend="official"),
    case("MT50", "one_hot", slow=True, backend="native"),
    case("ML45", "hidden_goal", split="train", slow=True, backend="native"),
    case("ML25", "hidden_goal", split="test", slow=True, backend="official"),
    case("ML45", "hidden_goal", split="test", slow=True, backend="official"),
]


class Rollout(NamedTuple):
    """One env's spec and the TimeSteps of its jitted random rollout, on the host."""

    case: EnvCase
    spec: EnvSpec
    first: TimeStep  # from reset, fields [envs, ...]
    steps: TimeStep  # stacked by scan, fields [time, envs, ...]


def random_rollout(env, key: jax.Array, num_steps: int) -> tuple[TimeStep, TimeStep]:
    """Reset under jit, then take `num_steps` uniform random actions in one jitted lax.scan."""
    spec = env.spec
    reset_key, action_key = jax.random.split(key)
    state, first = jax.jit(env.reset)(reset_key)

    def body(state, key):
        shape = (spec.num_envs, spec.action_size)
        action = jax.random.uniform(key, shape, minval=spec.action_low, maxval=spec.action_high)
        return env.step(state, action)

    scan = jax.jit(lambda state, keys: jax.lax.scan(body, state, keys))
    _, steps = scan(state, jax.random.split(action_key, num_steps))
    return first, steps


@pytest.fixture(scope="module", params=CASES)
def rollout(request) -> Rollout:
    env_case = request.param
    env = make(env_case.name, **env_case.kwargs)
    try:
        first, steps = random_rollout(env, jax.random.key(0), NUM_STEPS)
    finally:
        if hasattr(env, "close"):
            env.close()
    return Rollout(env_case, env.spec, jax.device_get(first), jax.device_get(steps))


def timesteps(rollout: Rollout) -> list[tuple[str, TimeStep, tuple[int, ...]]]:
    """The reset TimeStep and the scanned ones, each with its leading (batch) shape."""
    return [
        ("reset", rollout.first, (rollout.spec.num_envs,)),
        ("step", rollout.steps, (NUM_STEPS, rollout.spec.num_envs)),
    ]


def test_spec_is_consistent(rollout):
    spec, kwargs = rollout.spec, rollout.case.kwargs
    assert spec.num_envs == spec.num_tasks * spec.envs_per_task
    assert spec.envs_per_task == kwargs.get("envs_per_task", 1)
    if "num_tasks" in kwargs:
        assert spec.num_tasks == kwargs["num_tasks"]
    assert spec.num_tasks >= 1
    assert len(set(spec.task_names)) == spec.num_tasks, spec.task_names
    assert spec.action_low < spec.action_high
    assert spec.episode_length > NUM_STEPS  # so the scan below never crosses an episode end
    assert spec.goals_per_task >= 1
    assert EnvSpec.from_dict(spec.to_dict()) == spec


def test_timestep_shapes_and_dtypes_follow_the_spec(rollout):
    spec = rollout.spec
    for where, ts, batch in timesteps(rollout):
        expected = {
            "obs": ((*batch, spec.obs_size), np.float32),
            "final_obs": ((*batch, spec.obs_size), np.float32),
            "reward": (batch, np.float32),
            "terminated": (batch, np.bool_),
            "truncated": (batch, np.bool_),
            "success": (batch, np.bool_),
            "task_id": (batch, np.int32),
        }
        for field, (shape, dtype) in expected.items():
            value = np.asarray(getattr(ts, field))
            assert value.shape == shape, f"{where}.{field}: {value.shape} != {shape}"
            assert value.dtype == dtype, f"{where}.{field}: {value.dtype} != {dtype}"


def test_values_are_finite(rollout):
    for where, ts, _ in timesteps(rollout):
        for field in ("obs", "final_obs", "reward"):
            assert np.isfinite(getattr(ts, field)).all(), f"{where}.{field} has NaN or Inf"


def test_task_ids_are_task_major(rollout):
    spec = rollout.spec
    expected = np.repeat(np.arange(spec.num_tasks), spec.envs_per_task)
    np.testing.assert_array_equal(rollout.first.task_id, expected)
    np.testing.assert_array_equal(
        rollout.steps.task_id, np.broadcast_to(expected, (NUM_STEPS,) + expected.shape)
    )


def test_final_obs_equals_obs_where_no_episode_ended(rollout):
    first, steps = rollout.first, rollout.steps
    assert not first.terminated.any() and not first.truncated.any()
    np.testing.assert_array_equal(first.final_obs, first.obs)
    running = ~(steps.terminated | steps.truncated)
    assert running.all()  # NUM_STEPS < episode_length and these envs do not terminate early
    np.testing.assert_array_equal(steps.final_obs[running], steps.obs[running])


def test_obs_layout(rollout):
    spec = rollout.spec
    for where, ts, _ in timesteps(rollout):
        for field in ("obs", "final_obs"):
            obs = getattr(ts, field)
            if rollout.case.layout == "one_hot":
                one_hot = np.eye(spec.num_tasks, dtype=np.float32)[ts.task_id]
                np.testing.assert_array_equal(
                    obs[..., -spec.num_tasks :], one_hot, err_msg=f"{where}.{field}"
                )
            else:
                assert spec.obs_size == MW_OBS_SIZE
                assert not obs[..., MW_GOAL_COLUMNS].any(), f"{where}.{field}: goal visible"


def test_obs_size_and_reward_range_of_the_env_family(rollout):
    spec, steps = rollout.spec, rollout.steps
    if rollout.case.name == "toy":
        # position (2) + one-hot; reward 1 - distance (+1 on success), distance at most 2√2 in the unit box
        assert spec.obs_size == 2 + spec.num_tasks
        low, high = 1 - 2 * np.sqrt(2) - 0.1, 2.0
    else:
        one_hot_size = spec.num_tasks if rollout.case.layout == "one_hot" else 0
        assert spec.obs_size == MW_OBS_SIZE + one_hot_size
        low, high = MW_REWARD_RANGE
    assert (steps.reward >= low).all() and (steps.reward <= high).all(), steps.reward


def test_held_out_splits_are_metaworlds_own_and_ml25_shares_basketball():
    """ML10 and ML45 test tasks are all held out; metaworld's ML25 split tests on one training task."""
    from mtrl.envs.metaworld import task_names

    for benchmark, shared in (("ML10", set()), ("ML45", set()), ("ML25", {"basketball-v3"})):
        train, test = (set(task_names(benchmark, split=split)) for split in ("train", "test"))
        assert train & test == shared, benchmark


def test_the_spec_names_the_one_hot_columns():
    from mtrl.envs import make

    assert make("toy", num_tasks=3).spec.task_id_columns == 3
    assert make("toy", num_tasks=3).spec.state_size == 2
    assert make("toy-ml").spec.task_id_columns == 0


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("toy", {}),
        ("MT1", {"task": "reach-v3", "backend": "official"}),
        ("MT1", {"task": "reach-v3"}),  # native, the default
        ("MiniGrid-MT1", {"task": "LavaGapS7", "envs_per_task": 2}),
        ("MiniGrid-MT1", {"task": "LavaGapS7", "envs_per_task": 2, "backend": "farama"}),
    ],
    ids=["toy", "official", "native", "minigrid", "farama"],
)
def test_reset_and_step_called_from_python_are_compiled_and_replay_the_scan(name, kwargs):
    """What a gymnasium user writes first, a Python loop over `env.step`, runs one compiled program per
    call (eagerly, every jnp op would be dispatched on its own: 24× slower on native MT10) and plays
    exactly what the jitted scan plays. Host-stepped envs get a fresh copy for each way."""
    looped, scanned = make(name, **kwargs), make(name, **kwargs)
    for method in (looped.reset, looped.step):
        assert callable(getattr(method, "lower", None)), f"{name}: {method} is not jitted"
    spec = looped.spec
    keys = jax.random.split(jax.random.key(3), 12)
    if spec.discrete_actions:
        actions = jax.vmap(lambda k: jax.random.randint(k, (spec.num_envs,), 0, spec.action_size))(keys)
    else:
        shape = (spec.num_envs, spec.action_size)
        actions = jax.vmap(lambda k: jax.random.uniform(k, shape, minval=-1.0, maxval=1.0))(keys)
    try:
        state, _ = looped.reset(jax.random.key(0))
        calls = []
        for action in np.asarray(actions):
            state, step = looped.step(state, action)
            calls.append(step)
        state, _ = scanned.reset(jax.random.key(0))
        _, scan = jax.jit(lambda s, a: jax.lax.scan(scanned.step, s, a))(state, actions)
    finally:
        for env in (looped, scanned):
            if hasattr(env, "close"):
                env.close()
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *calls)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(stacked), jax.tree.leaves(scan), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-6, atol=1e-6, err_msg=jax.tree_util.keystr(path))
