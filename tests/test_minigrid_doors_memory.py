"""RedBlueDoors-6x6 and MemoryS11 generators against Farama minigrid's: shapes under jit/vmap, the layout
distribution over a few thousand resets, and `from_farama` round trips.

The distribution tests are chi-square tests of homogeneity between N Farama resets and N JAX layouts, one
per variable that defines the task (the whole world, which fixes the walls and where each door / object
is; the agent's position and direction; the rule positions; a few joints for independence). Each must have
p > P_MIN. A false alarm under a correct generator has probability P_MIN per test (the seeds are fixed, so
the outcome is reproducible); `test_*_wrong_distributions_are_caught` checks that plausible bugs (a fixed
direction, an off-by-one range, dependent draws) give p-values far below it on the same sample size.
"""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
import pytest
from mtrl.envs.minigrid.layout import BALL, BLUE, CLOSED, DOOR, GREEN, KEY, RED, WALL_CELL
from mtrl.envs.minigrid.tasks import memory, redbluedoors
from scipy import stats

N = 5000
"""Resets per side: the sparsest table (RedBlueDoors world × agent cell, 256 equally likely outcomes) then
expects ~20 per cell, enough for the chi-square approximation."""
P_MIN = 1e-3
P_WRONG = 1e-9
"""What a deliberately wrong distribution must fall below: far under P_MIN, so detection is not luck."""
CANVAS = (13, 13)


def _p_same(a: np.ndarray, b: np.ndarray) -> float:
    """Chi-square homogeneity p-value of two samples of categorical outcomes (rows of `a` and `b`)."""
    rows = np.concatenate(
        [np.asarray(a, np.int32).reshape(len(a), -1), np.asarray(b, np.int32).reshape(len(b), -1)]
    )
    rows = np.ascontiguousarray(rows)
    _, ids = np.unique(
        rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel(), return_inverse=True
    )
    k = ids.max() + 1
    if k == 1:
        return 1.0
    table = np.stack([np.bincount(ids[: len(a)], minlength=k), np.bincount(ids[len(a) :], minlength=k)])
    return float(stats.chi2_contingency(table).pvalue)


def _farama_samples(module, n: int) -> dict[str, np.ndarray]:
    """n Farama resets as arrays, read as `from_farama` reads them (its grid is `grid.encode()` and its
    rule positions `module.rule_positions`; the round-trip tests check that) but without building n
    jax Layouts, which would dominate the test's time."""
    env = gym.make(module.TASK.env_id).unwrapped
    rows = []
    for seed in range(n):
        env.reset(seed=seed)
        row = dict.fromkeys(_RULES, (-1, -1))
        row.update(module.rule_positions(env))
        row.update(grid=env.grid.encode(), agent_pos=tuple(int(v) for v in env.agent_pos))
        rows.append(row | {"agent_dir": env.agent_dir})
    return {k: np.stack([np.asarray(r[k], np.int32) for r in rows]) for k in _FIELDS}


def _jax_samples(module, n: int) -> dict[str, np.ndarray]:
    """n JAX layouts; `grid` keeps the task's world only (the canvas beyond it is checked elsewhere)."""
    task = module.TASK
    keys = jax.random.split(jax.random.key(0), n)
    layouts = jax.jit(jax.vmap(lambda k: module.generate(k, *CANVAS)))(keys)
    out = {k: np.asarray(getattr(layouts, k)) for k in _FIELDS}
    out["grid"] = out["grid"][:, : task.width, : task.height]
    return out


_RULES = ("success_pos", "failure_pos", "red_door", "blue_door")
_FIELDS = ("grid", "agent_pos", "agent_dir", *_RULES)


@pytest.fixture(scope="module")
def doors():
    return _farama_samples(redbluedoors, N), _jax_samples(redbluedoors, N)


@pytest.fixture(scope="module")
def mem():
    return _farama_samples(memory, N), _jax_samples(memory, N)


# ---------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("module", [redbluedoors, memory])
def test_generate_shapes_jit_vmap(module):
    task = module.TASK
    env = gym.make(task.env_id).unwrapped
    assert (task.width, task.height) == (env.width, env.height)
    assert task.max_steps == env.max_steps
    assert task.see_through_walls == env.see_through_walls
    assert task.pickup_is_toggle == (module is memory)
    lay = jax.jit(task.generate, static_argnums=(1, 2))(jax.random.key(3), task.width, task.height)
    assert lay.grid.shape == (task.width, task.height, 3) and lay.grid.dtype == jnp.int32
    assert lay.agent_pos.shape == (2,) and lay.agent_pos.dtype == jnp.int32
    assert lay.agent_dir.shape == () and lay.agent_dir.dtype == jnp.int32
    batch = jax.jit(jax.vmap(lambda k: task.generate(k, 25, 25)))(jax.random.split(jax.random.key(1), 8))
    assert batch.grid.shape == (8, 25, 25, 3) and batch.agent_pos.shape == (8, 2)
    assert batch.agent_dir.shape == (8,)
    for field in ("success_pos", "failure_pos", "red_door", "blue_door"):
        assert getattr(batch, field).shape == (8, 2) and getattr(batch, field).dtype == jnp.int32
    # the canvas beyond the task's world is wall
    outside = np.ones((25, 25), bool)
    outside[: task.width, : task.height] = False
    assert (np.asarray(batch.grid)[:, outside] == WALL_CELL).all()
    with pytest.raises(ValueError):
        task.generate(jax.random.key(0), task.width - 1, task.height)


# ---------------------------------------------------------------------------------------------- RedBlueDoors


def _doors_invariants(s):
    """What holds in every RedBlueDoors layout: red door on the room's left wall, blue on its right, both
    closed, the agent on an empty cell, no Memory positions."""
    n = len(s["grid"])
    rows = np.arange(n)
    red, blue = s["red_door"], s["blue_door"]
    assert (red[:, 0] == redbluedoors.ROOM_LEFT).all() and (blue[:, 0] == redbluedoors.ROOM_RIGHT).all()
    assert (s["grid"][rows, red[:, 0], red[:, 1]] == (DOOR, RED, CLOSED)).all()
    assert (s["grid"][rows, blue[:, 0], blue[:, 1]] == (DOOR, BLUE, CLOSED)).all()
    assert ((s["grid"][..., 0] == DOOR).sum(axis=(1, 2)) == 2).all()
    assert (s["grid"][rows, s["agent_pos"][:, 0], s["agent_pos"][:, 1]] == (1, 0, 0)).all()
    assert (s["success_pos"] == -1).all() and (s["failure_pos"] == -1).all()


def test_redbluedoors_layout_distribution(doors):
    far, jx = doors
    _doors_invariants(far)
    _doors_invariants(jx)
    # supports: 16 worlds (red row × blue row), 16 agent cells, 4 directions
    assert len(np.unique(far["grid"].reshape(N, -1), axis=0)) == 16
    assert len(np.unique(jx["grid"].reshape(N, -1), axis=0)) == 16
    assert {tuple(p) for p in far["agent_pos"]} == {tuple(p) for p in jx["agent_pos"]}
    assert set(far["agent_dir"]) == set(jx["agent_dir"]) == {0, 1, 2, 3}
    doors_pos = lambda s: np.concatenate([s["red_door"], s["blue_door"]], axis=1)  # noqa: E731
    checks = {
        "world": (far["grid"], jx["grid"]),
        "door rows": (doors_pos(far), doors_pos(jx)),
        "agent_pos": (far["agent_pos"], jx["agent_pos"]),
        "agent_dir": (far["agent_dir"], jx["agent_dir"]),
        "agent_pos×dir": (
            np.c_[far["agent_pos"], far["agent_dir"]],
            np.c_[jx["agent_pos"], jx["agent_dir"]],
        ),
        "door rows×agent_pos": (
            np.c_[doors_pos(far), far["agent_pos"]],
            np.c_[doors_pos(jx), jx["agent_pos"]],
        ),
    }
    for name, (a, b) in checks.items():
        assert _p_same(a, b) > P_MIN, name


def test_redbluedoors_wrong_distributions_are_caught(doors):
    far, jx = doors
    rng = np.random.default_rng(0)
    fixed_dir = np.zeros_like(jx["agent_dir"])
    assert _p_same(far["agent_dir"], fixed_dir) < P_WRONG
    # the agent anywhere in the 6 × 6 rectangle's rows 1..3 only (one row short)
    short = jx["agent_pos"].copy()
    short[:, 1] = np.where(short[:, 1] == 4, rng.integers(1, 4, N), short[:, 1])
    assert _p_same(far["agent_pos"], short) < P_WRONG
    # the red door drawn from 1..3 (an exclusive-bound slip)
    red = jx["red_door"].copy()
    red[:, 1] = rng.integers(1, 4, N)
    assert _p_same(far["red_door"], red) < P_WRONG
    # one row drawn for both doors: right marginals, wrong joint
    same = np.c_[jx["red_door"], np.full(N, redbluedoors.ROOM_RIGHT), jx["red_door"][:, 1]]
    assert _p_same(np.c_[far["red_door"], far["blue_door"]], same) < P_WRONG
    # colours swapped sides
    assert _p_same(far["red_door"], jx["blue_door"]) < P_WRONG
    with pytest.raises(AssertionError):
        _doors_invariants(jx | {"red_door": jx["blue_door"], "blue_door": jx["red_door"]})


def test_redbluedoors_from_farama_round_trip():
    env = gym.make(redbluedoors.TASK.env_id).unwrapped
    for seed in range(20):
        env.reset(seed=seed)
        lay = redbluedoors.from_farama(env, *CANVAS)
        grid = np.asarray(lay.grid)
        np.testing.assert_array_equal(grid[: env.width, : env.height], env.grid.encode())
        assert (grid[env.width :] == WALL_CELL).all() and (grid[:, env.height :] == WALL_CELL).all()
        assert tuple(np.asarray(lay.agent_pos)) == tuple(int(v) for v in env.agent_pos)
        assert int(lay.agent_dir) == env.agent_dir
        assert env.grid.get(*np.asarray(lay.red_door).tolist()) is env.red_door
        assert env.grid.get(*np.asarray(lay.blue_door).tolist()) is env.blue_door


# ---------------------------------------------------------------------------------------------- Memory


def _memory_invariants(s):
    """What holds in every MemoryS11 layout: the agent on the middle row facing right, green key/ball
    objects, success next to the twin of the start object and failure next to the other, no doors."""
    rows = np.arange(len(s["grid"]))
    assert (s["agent_pos"][:, 1] == memory.MID).all() and (s["agent_dir"] == 0).all()
    assert (s["grid"][rows, s["agent_pos"][:, 0], s["agent_pos"][:, 1]] == (1, 0, 0)).all()
    start = s["grid"][:, 1, memory.MID - 1]
    assert np.isin(start[:, 0], (KEY, BALL)).all() and (start[:, 1:] == (GREEN, 0)).all()

    # the object beside a target: above the upper target (y = MID - 1), below the lower one
    def beside(pos):
        return s["grid"][rows, pos[:, 0], np.where(pos[:, 1] < memory.MID, pos[:, 1] - 1, pos[:, 1] + 1)]

    assert (beside(s["success_pos"]) == start).all()
    assert (beside(s["failure_pos"])[:, 0] == KEY + BALL - start[:, 0]).all()
    assert {tuple(p) for p in s["success_pos"]} <= {memory.TOP_TARGET, memory.BOTTOM_TARGET}
    assert (s["success_pos"] != s["failure_pos"]).any(axis=1).all()
    assert (s["red_door"] == -1).all() and (s["blue_door"] == -1).all()


def test_memory_layout_distribution(mem):
    far, jx = mem
    _memory_invariants(far)
    _memory_invariants(jx)
    # supports: 4 worlds (start object × end order), agent x in 1..8
    assert len(np.unique(far["grid"].reshape(N, -1), axis=0)) == 4
    assert len(np.unique(jx["grid"].reshape(N, -1), axis=0)) == 4
    assert set(far["agent_pos"][:, 0]) == set(jx["agent_pos"][:, 0]) == set(range(1, 9))
    start = lambda s: s["grid"][:, 1, memory.MID - 1, 0]  # noqa: E731
    checks = {
        "world": (far["grid"], jx["grid"]),
        "agent_pos": (far["agent_pos"], jx["agent_pos"]),
        "start object": (start(far), start(jx)),
        "success_pos": (far["success_pos"], jx["success_pos"]),
        "start object×success_pos": (
            np.c_[start(far), far["success_pos"]],
            np.c_[start(jx), jx["success_pos"]],
        ),
        "world×agent_pos": (
            np.c_[far["grid"].reshape(N, -1), far["agent_pos"]],
            np.c_[jx["grid"].reshape(N, -1), jx["agent_pos"]],
        ),
    }
    for name, (a, b) in checks.items():
        assert _p_same(a, b) > P_MIN, name


def test_memory_wrong_distributions_are_caught(mem):
    far, jx = mem
    rng = np.random.default_rng(0)
    # agent x from 1..7 (hallway_end excluded)
    x = jx["agent_pos"][:, 0]
    assert _p_same(far["agent_pos"][:, 0], np.where(x == 8, rng.integers(1, 8, N), x)) < P_WRONG
    # agent only in the start room and hallway up to x = 4
    assert _p_same(far["agent_pos"][:, 0], rng.integers(1, 5, N)) < P_WRONG
    # the start object always a key
    assert _p_same(far["grid"][:, 1, memory.MID - 1, 0], np.full(N, KEY)) < P_WRONG
    # the twin always at the top
    top = np.broadcast_to(np.array(memory.TOP_TARGET), (N, 2))
    assert _p_same(far["success_pos"], top) < P_WRONG
    # success and failure swapped: the same distribution by symmetry, so the invariants must catch it
    swapped = jx | {"success_pos": jx["failure_pos"], "failure_pos": jx["success_pos"]}
    with pytest.raises(AssertionError):
        _memory_invariants(swapped)


def test_memory_from_farama_round_trip():
    env = gym.make(memory.TASK.env_id).unwrapped
    for seed in range(20):
        env.reset(seed=seed)
        lay = memory.from_farama(env, *CANVAS)
        grid = np.asarray(lay.grid)
        np.testing.assert_array_equal(grid[: env.width, : env.height], env.grid.encode())
        assert (grid[env.width :] == WALL_CELL).all() and (grid[:, env.height :] == WALL_CELL).all()
        assert tuple(np.asarray(lay.agent_pos)) == tuple(int(v) for v in env.agent_pos)
        assert int(lay.agent_dir) == env.agent_dir
        assert tuple(np.asarray(lay.success_pos)) == tuple(env.success_pos)
        assert tuple(np.asarray(lay.failure_pos)) == tuple(env.failure_pos)
