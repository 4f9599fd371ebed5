"""The batched MiniGrid env (`make_minigrid`): jit/scan/vmap, the TimeStep contract, both backends.

Compiled programs are few and shared, because each MT7 program compiles all seven generators twice (in
`reset` and in `step`'s auto-reset): a jitted `lax.scan` of the jax backend with invariant checks inside the
loop (`rollout`: MT7, 2 envs per task, 800 steps — longer than every task's `max_steps`), the same scan
`jax.vmap`ped over 200 reset keys for 64 steps (the vmap test, and the port's side of the success-rate
comparison), and the farama backend's scan (host envs through `io_callback`, cheap to compile).

The success-rate comparison checks generator and dynamics together: one fixed observation-dependent random
policy (`action_weights`: forward where the cell ahead can be entered, pick up objects and toggle shut doors
in front, seldom step into lava) plays the first `CAP` = 64 steps of fresh episodes on the port (~400 per
task) and on Farama's own envs (300 per task). Per task, the rate of each outcome (success; failure =
terminated without reward; truncation; still running after `CAP` steps) must agree within Z = 4 standard
errors of the two-sample difference (6e-5 false-alarm rate per comparison, ~1e-3 over all of them; the seeds
are fixed, so the test is deterministic). With these sizes the bound is ±0.12 at a rate of 0.2 and ±0.15 at
0.5: it catches gross errors (a wrong goal region, doors that do not open, a lost rule); the exact
step-by-step agreement is tests/test_minigrid_parity.py's.
"""

from __future__ import annotations

import functools

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from minigrid.wrappers import ImgObsWrapper
from mtrl.envs.minigrid import BENCHMARKS, TASK_MODULES, engine, get_task, make_minigrid
from mtrl.envs.minigrid.engine import LEFT, NUM_ACTIONS
from mtrl.envs.minigrid.env import MiniGrid
from mtrl.envs.minigrid.layout import BALL, BOX, DOOR, EMPTY_ID, FLOOR, GOAL, KEY, LAVA, OPEN

MT7 = BENCHMARKS["MiniGrid-MT7"]
E = 2
"""Envs per task in every rollout: env 2i plays the policy, env 2i + 1 idles (turns left) in `rollout`."""
STEPS = 800
"""Longer than every task's max_steps (RedBlueDoors: 720), so every env ends at least one episode."""
CAP, PORT_KEYS, FARAMA_EPISODES = 64, 200, 300
Z = 4.0
OBS_SIZE = 147


def action_weights(obs, xp=jnp):
    """Unnormalised action weights [envs, 7] from the 7×7×3 view ([envs, 147], numpy or jax)."""
    view = obs.reshape(obs.shape[0], 7, 7, 3)
    kind, state = view[:, 3, 5, 0], view[:, 3, 5, 2]  # the cell ahead of the agent at (3, 6)
    enterable = (kind == EMPTY_ID) | (kind == FLOOR) | (kind == GOAL) | ((kind == DOOR) & (state == OPEN))
    item = (kind == KEY) | (kind == BALL) | (kind == BOX)
    shut = (kind == DOOR) & (state != OPEN)
    one = xp.ones(obs.shape[0])
    forward = xp.where(enterable, 8.0, xp.where(kind == LAVA, 0.5, 0.0))
    return xp.stack([one, one, forward, 0.1 + 4.0 * item, 0.05 * one, 0.1 + 4.0 * shut, 0.05 * one], axis=1)


def _flat_obs(world, rules):
    n = rules.max_steps.shape[0]
    return jax.vmap(engine.observe)(world, rules).reshape(n, -1).astype(jnp.float32)


def rollout(env, key, idle, steps: int, checks: bool):
    """`steps` vector steps of the policy from `env.reset`; per-step records, and (jax backend, `checks`)
    counts of violated invariants, checked against an independent `engine.step_world` of the same action.

    Env `i` turns left forever where `idle[i]` (it must be truncated at exactly its task's max_steps).
    Policy keys are `fold_in(key, t)`, so a shorter rollout is a prefix of a longer one."""
    reset_key, policy_key = jax.random.split(key)
    state, first = env.reset(reset_key)
    counts0 = {name: jnp.zeros((), jnp.int32) for name in CHECKS} if checks else {}

    def body(carry, t):
        state, obs, counts = carry
        weights = action_weights(obs)
        action = jnp.where(
            idle, LEFT, jax.random.categorical(jax.random.fold_in(policy_key, t), jnp.log(weights))
        )
        new_state, ts = env.step(state, action)
        done = ts.terminated | ts.truncated
        if checks:
            counts = {
                k: counts[k] + jnp.sum(~ok) for k, ok in invariants(env, state, action, new_state, ts).items()
            }
        record = {
            "reward": ts.reward,
            "terminated": ts.terminated,
            "truncated": ts.truncated,
            "success": ts.success,
            "obs_is_final": jnp.all(ts.obs == ts.final_obs, axis=1),
            "obs_hash": ts.obs @ jnp.arange(OBS_SIZE, dtype=jnp.float32),
            "final_hash": ts.final_obs @ jnp.arange(OBS_SIZE, dtype=jnp.float32),
            "done": done,
        }
        return (new_state, ts.obs, counts), (record, ts)

    (_, _, counts), (records, steps_ts) = jax.lax.scan(body, (state, first.obs, counts0), jnp.arange(steps))
    last_ts = jax.tree.map(lambda x: x[-1], steps_ts)
    return first, last_ts, records, counts


CHECKS = (
    "final_obs is the ending step's observation",
    "reward/terminated/truncated/success are the engine's",
    "done: obs is the fresh world's first observation",
    "done: the fresh world starts at step 0, empty-handed",
    "not done: obs == final_obs and the world carries on",
    "reward > 0 exactly on success steps, success terminates",
    "success reward = 1 - 0.9 * steps / max_steps",
    "episodes end by max_steps, truncated exactly there",
    "task_id task-major",
)


def invariants(env: MiniGrid, state, action, new_state, ts) -> dict[str, jax.Array]:
    """Per env, whether each of `CHECKS` holds for this step (jax backend)."""
    rules = env.rules
    world, reward, terminated, truncated, success = jax.vmap(engine.step_world)(state.world, action, rules)
    done = terminated | truncated
    count = state.world.step_count + 1
    fresh = new_state.world
    same_world = jax.vmap(
        lambda a, b: jnp.all(jnp.stack([jnp.array_equal(x, y) for x, y in _leaf_pairs(a, b)]))
    )(world, fresh)
    # one observe for both worlds (each copy of the unrolled view adds seconds of compilation)
    twice = lambda a, b: jnp.concatenate([a, b])  # noqa: E731
    views = _flat_obs(jax.tree.map(twice, world, fresh), jax.tree.map(twice, rules, rules))
    ending_view, fresh_view = jnp.split(views, 2)
    expected_reward = 1.0 - 0.9 * count.astype(jnp.float32) / rules.max_steps.astype(jnp.float32)
    task_major = jnp.repeat(jnp.arange(len(env.tasks)), env.spec.envs_per_task)
    ok = [
        jnp.all(ts.final_obs == ending_view, axis=1),
        (ts.reward == reward)
        & (ts.terminated == terminated)
        & (ts.truncated == truncated)
        & (ts.success == success),
        ~done | jnp.all(ts.obs == fresh_view, axis=1),
        ~done | ((fresh.step_count == 0) & jnp.all(fresh.carrying == 0, axis=1)),
        done | (jnp.all(ts.obs == ts.final_obs, axis=1) & same_world),
        ((ts.reward > 0) == ts.success) & (~ts.success | ts.terminated),
        ~ts.success | (jnp.abs(ts.reward - expected_reward) < 1e-6),
        (count <= rules.max_steps) & (ts.truncated == (count == rules.max_steps)),
        ts.task_id == task_major,
    ]
    return dict(zip(CHECKS, ok, strict=True))


def _leaf_pairs(a, b):
    return zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)


# --------------------------------------------------------------------------------------------------------
# fixtures: the compiled rollouts


@pytest.fixture(scope="module")
def jax_env():
    return make_minigrid("MiniGrid-MT7", envs_per_task=E)


IDLE = np.tile([False, True], len(MT7))


@pytest.fixture(scope="module")
def jax_run(jax_env):
    run = jax.jit(functools.partial(rollout, jax_env, steps=STEPS, checks=True))
    return jax.device_get(run(jax.random.key(0), jnp.asarray(IDLE)))


@pytest.fixture(scope="module")
def vmapped_run(jax_env):
    """The port's CAP-step rollouts from PORT_KEYS reset keys, vmapped. Row 0 repeats `jax_run` (its key and
    idle envs) so that the vmapped program can be compared with the unbatched one; the other rows play the
    policy in every env."""
    keys = jnp.concatenate([jax.random.key(0)[None], jax.random.split(jax.random.key(1), PORT_KEYS - 1)])
    idle = np.zeros((PORT_KEYS, len(MT7) * E), bool)
    idle[0] = IDLE
    run = jax.jit(jax.vmap(functools.partial(rollout, jax_env, steps=CAP, checks=False)))
    return keys, idle, jax.device_get(run(keys, jnp.asarray(idle)))


@pytest.fixture(scope="module")
def farama_run():
    env = make_minigrid("MiniGrid-MT7", backend="farama", envs_per_task=E)
    run = jax.jit(functools.partial(rollout, env, steps=STEPS, checks=False))
    out = jax.device_get(run(jax.random.key(0), jnp.asarray(IDLE)))
    env.close()
    return out


def episodes(records) -> list[list[tuple[int, str]]]:
    """Per env, its completed episodes as (length, outcome), from a rollout's records [steps, envs]."""
    done = records["done"]
    envs = done.shape[1]
    result = []
    for i in range(envs):
        ends = np.flatnonzero(done[:, i])
        lengths = np.diff(np.concatenate([[-1], ends]))
        result.append([(int(n), _outcome(records, t, i)) for n, t in zip(lengths, ends, strict=True)])
    return result


def _outcome(records, t: int, i: int) -> str:
    if records["terminated"][t, i]:
        return "success" if records["reward"][t, i] > 0 else "failure"
    return "truncation"


# --------------------------------------------------------------------------------------------------------
# the jax backend


def test_timestep_shapes_and_task_ids(jax_env, jax_run):
    first, last, _, _ = jax_run
    n = len(MT7) * E
    spec = jax_env.spec
    assert (spec.obs_size, spec.action_size, spec.num_envs, spec.discrete_actions) == (OBS_SIZE, 7, n, True)
    assert spec.task_names == tuple(get_task(t).env_id for t in MT7)
    assert spec.episode_length == 720
    for ts in (first, last):
        assert ts.obs.shape == ts.final_obs.shape == (n, OBS_SIZE)
        assert ts.obs.dtype == ts.final_obs.dtype == np.float32
        assert ts.reward.shape == (n,) and ts.reward.dtype == np.float32
        for flag in (ts.terminated, ts.truncated, ts.success, ts.unstable):
            assert flag.shape == (n,) and flag.dtype == np.bool_
        np.testing.assert_array_equal(ts.task_id, np.repeat(np.arange(len(MT7)), E))
        assert ts.task_id.dtype == np.int32
    assert not first.terminated.any() and not first.truncated.any() and not first.reward.any()
    np.testing.assert_array_equal(first.obs, first.final_obs)
    # observations are minigrid encodings: objects 0..10, colours 0..5, states 0..2
    image = first.obs.reshape(n, 7, 7, 3)
    assert image[..., 0].max() <= 10 and image[..., 1].max() <= 5 and image[..., 2].max() <= 2
    assert (image[:, 3, 6, 0] == EMPTY_ID).all()  # the agent's own cell: nothing carried at reset


def test_invariants_hold_at_every_step(jax_run):
    """Auto-reset, the TimeStep contract, rewards and horizons, checked inside the scan at every step of
    every env against an independent `engine.step_world` of the same state and action."""
    _, _, records, counts = jax_run
    violated = {name: int(c) for name, c in counts.items() if c}
    assert not violated, violated
    assert records["done"].sum() > 50  # the checks were exercised on many episode ends


def test_every_task_ends_episodes_by_max_steps(jax_run):
    _, _, records, _ = jax_run
    per_env = episodes(records)
    for k, name in enumerate(MT7):
        max_steps = get_task(name).max_steps
        played, idle = per_env[E * k], per_env[E * k + 1]
        assert played, f"{name}: the policy's env never ended an episode in {STEPS} steps"
        assert all(n <= max_steps for n, _ in played)
        assert all(n == max_steps for n, out in played if out == "truncation")
        # the idle env turns on the spot: truncated at exactly max_steps, then again from the fresh episode
        assert idle == [(max_steps, "truncation")] * (STEPS // max_steps), (name, idle)
    # across the played envs every outcome kind occurs (rewards only on success steps is a CHECK above)
    outcomes = {out for k in range(len(MT7)) for _, out in per_env[E * k]}
    assert {"success", "failure"} <= outcomes, outcomes


def test_auto_reset_obs_and_final_obs(jax_run):
    """Where no episode ended `obs == final_obs`; where one did, `obs` is a fresh layout's first view and
    almost always differs from the ending view (equal only by coincidence)."""
    _, _, records, _ = jax_run
    done = records["done"]
    assert records["obs_is_final"][~done].all()
    assert (records["obs_hash"][done] != records["final_hash"][done]).mean() > 0.9


def test_vmap_over_reset_keys_matches_the_unbatched_run(vmapped_run, jax_run):
    """`jax.vmap` over reset keys: shapes gain the key axis, and row 0 (the key and idle envs of `jax_run`) is
    step for step the unbatched jitted rollout's first CAP steps (under vmap the env's auto-reset `lax.cond`
    turns into a select: same results)."""
    _, _, (first, last, records, _) = vmapped_run
    s_first, _, s_records, _ = jax_run
    n = len(MT7) * E
    assert first.obs.shape == (PORT_KEYS, n, OBS_SIZE) and last.obs.shape == (PORT_KEYS, n, OBS_SIZE)
    assert records["reward"].shape == (PORT_KEYS, CAP, n)
    np.testing.assert_array_equal(first.obs[0], s_first.obs)
    for name in ("obs_hash", "final_hash", "done", "terminated", "truncated", "success"):
        np.testing.assert_array_equal(records[name][0], s_records[name][:CAP], err_msg=name)
    np.testing.assert_allclose(records["reward"][0], s_records["reward"][:CAP], atol=1e-7)
    assert records["done"][0].sum() > 5
    # different keys, different layouts
    assert not np.array_equal(first.obs[1], first.obs[2])


# --------------------------------------------------------------------------------------------------------
# the farama backend


def test_farama_backend_under_jit_and_scan(jax_run, farama_run):
    """Same TimeStep shapes and dtypes as the port, the same contract (obs == final_obs unless done,
    success == reward > 0, episodes end by max_steps, idle envs truncated at max_steps), and per-task episode
    counts of the same order of magnitude as the port's under the same policy."""
    j_first, j_last, j_records, _ = jax_run
    f_first, f_last, f_records, _ = farama_run
    for j, f in ((j_first, f_first), (j_last, f_last)):
        for jx, fx in zip(jax.tree.leaves(j), jax.tree.leaves(f), strict=True):
            assert (jx.shape, jx.dtype) == (fx.shape, fx.dtype)
    np.testing.assert_array_equal(f_last.task_id, j_last.task_id)
    done = f_records["done"]
    assert (f_records["obs_is_final"] | done).all()
    np.testing.assert_array_equal(f_records["success"], f_records["reward"] > 0)
    assert not (f_records["success"] & ~f_records["terminated"]).any()
    j_eps, f_eps = episodes(j_records), episodes(f_records)
    for k, name in enumerate(MT7):
        max_steps = get_task(name).max_steps
        assert f_eps[E * k + 1] == [(max_steps, "truncation")] * (STEPS // max_steps), name
        assert all(n <= max_steps for n, _ in f_eps[E * k])
        nj, nf = len(j_eps[E * k]), len(f_eps[E * k])
        assert max(nj, nf) <= 4 * min(nj, nf) + 4, (name, nj, nf)


# --------------------------------------------------------------------------------------------------------
# success rates: the port's generator + dynamics against Farama's


def farama_capped_outcomes(task: str, n: int, cap: int, seed: int) -> list[str]:
    """`n` fresh Farama episodes of `task` under `action_weights`, each cut after `cap` steps."""
    env = ImgObsWrapper(gymnasium.make(get_task(task).env_id))
    rng = np.random.default_rng(seed)
    outcomes = []
    for i in range(n):
        obs, _ = env.reset(seed=seed * 100_000 + i)
        outcome = "running"
        for _ in range(cap):
            weights = action_weights(np.asarray(obs, np.float32).reshape(1, -1), np)[0]
            action = int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right"))
            obs, reward, terminated, truncated, _ = env.step(min(action, NUM_ACTIONS - 1))
            if terminated or truncated:
                outcome = ("success" if reward > 0 else "failure") if terminated else "truncation"
                break
        outcomes.append(outcome)
    env.close()
    return outcomes


def port_capped_outcomes(vmapped_run) -> dict[str, list[str]]:
    """Per task, the outcome of each playing env's first episode within the CAP steps of the vmapped runs."""
    _, idle, (_, _, records, _) = vmapped_run
    result = {name: [] for name in MT7}
    for row in range(PORT_KEYS):
        per_env = episodes(jax.tree.map(lambda x, row=row: x[row], records))
        for i, eps in enumerate(per_env):
            if not idle[row, i]:
                result[MT7[i // E]].append(eps[0][1] if eps else "running")
    return result


def rate_gaps(a: list[str], b: list[str]) -> dict[str, tuple[float, float, float]]:
    """Per outcome: (rate in a, rate in b, the Z-standard-error bound of their difference)."""
    gaps = {}
    for outcome in sorted(set(a) | set(b)):
        pa, pb = a.count(outcome) / len(a), b.count(outcome) / len(b)
        pooled = (a.count(outcome) + b.count(outcome)) / (len(a) + len(b))
        bound = Z * np.sqrt(max(pooled * (1 - pooled), 1e-4) * (1 / len(a) + 1 / len(b)))
        gaps[outcome] = (pa, pb, bound)
    return gaps


def test_success_rates_match_farama(vmapped_run):
    port = port_capped_outcomes(vmapped_run)
    report, failures = [], []
    for k, name in enumerate(MT7):
        farama = farama_capped_outcomes(name, FARAMA_EPISODES, CAP, seed=k + 1)
        for outcome, (pj, pf, bound) in rate_gaps(port[name], farama).items():
            report.append(
                f"{name:<20} {outcome:<10} port {pj:.3f} (n={len(port[name])})  farama {pf:.3f} "
                f"(n={len(farama)})  |Δ| {abs(pj - pf):.3f} <= {bound:.3f}"
            )
            if abs(pj - pf) > bound:
                failures.append(report[-1])
    print("\n" + "\n".join(report))
    assert not failures, "\n".join(failures)
    assert any(o == "success" for outs in port.values() for o in outs)


def test_rate_comparison_catches_a_wrong_distribution():
    """The bound is not vacuous: a success rate of 0.30 against 0.50, with these sample sizes, fails."""
    rng = np.random.default_rng(0)
    a = list(rng.choice(["success", "running"], size=2 * PORT_KEYS, p=[0.30, 0.70]))
    b = list(rng.choice(["success", "running"], size=FARAMA_EPISODES, p=[0.50, 0.50]))
    pa, pb, bound = rate_gaps(a, b)["success"]
    assert abs(pa - pb) > bound, (pa, pb, bound)


# --------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"name": "MiniGrid-MT4"}, ["MiniGrid-MT3", "MiniGrid-MT5", "MiniGrid-MT7", "MiniGrid-MT1"]),
        ({"name": "MiniGrid-MT1"}, list(TASK_MODULES)),
        ({"name": "MiniGrid-MT1", "task": "LavaGapS5"}, list(TASK_MODULES)),
        ({"name": "MiniGrid-MT3", "task": "LavaGapS7"}, ["MiniGrid-MT1"]),
        ({"name": "MiniGrid-MT3", "backend": "gym"}, ["jax", "farama"]),
        ({"name": "MiniGrid-MT3", "envs_per_task": 0}, ["envs_per_task"]),
    ],
)
def test_make_minigrid_errors_are_one_line_and_name_the_choices(kwargs, names):
    with pytest.raises(ValueError) as info:
        make_minigrid(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    for name in names:
        assert name in message, (name, message)


def test_make_minigrid_task_lists():
    assert make_minigrid("MiniGrid-MT1", task="DoorKey-6x6").spec.task_names == ("MiniGrid-DoorKey-6x6-v0",)
    for name, tasks in BENCHMARKS.items():
        spec = make_minigrid(name, envs_per_task=3).spec
        assert spec.task_names == tuple(get_task(t).env_id for t in tasks)
        assert spec.num_envs == 3 * len(tasks)
