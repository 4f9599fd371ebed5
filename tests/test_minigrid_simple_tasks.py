"""LavaGapS7, DistShift1 and DoorKey-6x6 generators against Farama minigrid.

Each JAX generator must draw layouts with the same distribution as Farama's `_gen_grid`. The statistics
tests compare categorical features of many JAX layouts (vmap+jit, 20 000) with Farama resets (4 000, one
seeded stream) by a two-sample chi-square homogeneity test, failing below p = 1e-3. Seeds are fixed, so the
tests are deterministic; for a correct generator p is uniform, so 1e-3 is a false-alarm rate that a fixed seed
either hits or not once and for all. With these sample sizes (effective n ≈ 3 300) a shift of the category
probabilities with sum((p - q)^2 / q) >= 0.01 gives chi-square ≈ 33 and is caught on a few degrees of
freedom; `test_statistics_catch_wrong_distributions` checks that concrete wrong generators fail.
"""

from __future__ import annotations

import functools

import gymnasium
import jax
import jax.numpy as jnp
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
import pytest
from mtrl.envs.minigrid.layout import DOOR, EMPTY, KEY, WALL_CELL
from mtrl.envs.minigrid.tasks import distshift, doorkey, lavagap
from scipy.stats import chi2_contingency

CW, CH = 11, 11  # a canvas larger than every task here: the task sits in its top-left corner
N_JAX, N_FARAMA = 20_000, 4_000
P_MIN = 1e-3
TASKS = [lavagap, distshift, doorkey]


@functools.cache
def jax_layouts(module):
    """`N_JAX` layouts on the full canvas, as numpy (one compile per task, shared by the tests)."""
    gen = jax.jit(jax.vmap(lambda k: module.generate(k, CW, CH)))
    layout = gen(jax.random.split(jax.random.key(0), N_JAX))
    return jax.tree.map(np.asarray, layout)


def jax_samples(module):
    """Task-region grids [n, W, H, 3], agent positions [n, 2] and directions [n] of `jax_layouts`."""
    layout = jax_layouts(module)
    return layout.grid[:, : module.TASK.width, : module.TASK.height], layout.agent_pos, layout.agent_dir


def farama_samples(module, n: int, seed: int = 0):
    """`n` Farama resets from one seeded stream, in the same form as `jax_samples`."""
    env = gymnasium.make(module.TASK.env_id).unwrapped
    env.reset(seed=seed)
    grids, pos, dirs = [], [], []
    for _ in range(n):
        env.reset()
        grids.append(env.grid.encode().astype(np.int32))
        pos.append(np.asarray(env.agent_pos))
        dirs.append(int(env.agent_dir))
    return np.stack(grids), np.stack(pos).astype(np.int32), np.asarray(dirs, np.int32)


_MIX = np.random.default_rng(12345).integers(1, 2**62, 4096) | 1


def row_ids(a) -> np.ndarray:
    """One int64 per row of an int array (a random linear hash, wrapping; collisions are negligible):
    `np.unique` on these is much faster than on rows."""
    a = np.asarray(a, np.int64).reshape(len(a), -1)
    return a @ _MIX[: a.shape[1]]


def pvalue(a, b) -> float:
    """Two-sample chi-square homogeneity test of two samples of categories (rows of an int array)."""
    cats, inverse = np.unique(np.concatenate([row_ids(a), row_ids(b)]), return_inverse=True)
    table = np.stack(
        [
            np.bincount(inverse[: len(a)], minlength=len(cats)),
            np.bincount(inverse[len(a) :], minlength=len(cats)),
        ]
    )
    if len(cats) == 1:
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


@pytest.fixture(scope="module")
def lavagap_samples():
    return jax_samples(lavagap), farama_samples(lavagap, N_FARAMA)


@pytest.fixture(scope="module")
def doorkey_samples():
    return jax_samples(doorkey), farama_samples(doorkey, N_FARAMA)


# ---------------------------------------------------------------- shapes, jit, vmap, task metadata


@pytest.mark.parametrize("module", TASKS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_generate_shapes_jit_vmap(module):
    task = module.TASK
    batch = jax_layouts(module)  # jit(vmap(generate))
    n = N_JAX
    assert batch.grid.dtype == np.int32 and batch.agent_pos.dtype == np.int32
    assert batch.agent_pos.shape == (n, 2) and batch.agent_dir.shape == (n,)
    grid = batch.grid
    assert grid.shape == (n, CW, CH, 3)
    # outside the task everything is wall; the task's border is wall too
    outside = np.ones((CW, CH), bool)
    outside[: task.width, : task.height] = False
    assert (grid[:, outside] == WALL_CELL).all()
    border = ~outside
    border[1 : task.width - 1, 1 : task.height - 1] = False
    assert (grid[:, border] == WALL_CELL).all()
    # the agent stands on an empty cell (minigrid keeps the agent out of the grid)
    pos = batch.agent_pos
    assert (grid[np.arange(n), pos[:, 0], pos[:, 1]] == EMPTY).all()
    assert ((0 <= batch.agent_dir) & (batch.agent_dir < 4)).all()
    # a single key (no vmap) on a canvas exactly the task's size
    exact = jax.jit(lambda k: module.generate(k, task.width, task.height))(jax.random.key(5))
    assert exact.grid.shape == (task.width, task.height, 3) and exact.grid.dtype == jnp.int32
    assert exact.agent_pos.shape == (2,) and exact.agent_dir.shape == ()


@pytest.mark.parametrize("module", TASKS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_task_metadata_matches_farama(module):
    env = gymnasium.make(module.TASK.env_id).unwrapped
    assert (module.TASK.width, module.TASK.height) == (env.width, env.height)
    assert module.TASK.max_steps == env.max_steps
    assert module.TASK.see_through_walls == env.see_through_walls
    assert module.TASK.pickup_is_toggle is False


# ---------------------------------------------------------------- from_farama round trip


@pytest.mark.parametrize("module", TASKS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_from_farama_round_trip(module):
    env = gymnasium.make(module.TASK.env_id).unwrapped
    for seed in range(5):
        env.reset(seed=seed)
        layout = module.from_farama(env, CW, CH)
        grid = np.asarray(layout.grid)
        np.testing.assert_array_equal(grid[: env.width, : env.height], env.grid.encode())
        outside = np.ones((CW, CH), bool)
        outside[: env.width, : env.height] = False
        assert (grid[outside] == WALL_CELL).all()
        np.testing.assert_array_equal(np.asarray(layout.agent_pos), np.asarray(env.agent_pos))
        assert int(layout.agent_dir) == env.agent_dir
        assert np.asarray(layout.success_pos).tolist() == [-1, -1]


# ---------------------------------------------------------------- DistShift1: deterministic


def test_distshift_equals_farama_exactly():
    """DistShift1 draws nothing: every key and every Farama seed give the same layout."""
    env = gymnasium.make(distshift.TASK.env_id).unwrapped
    batch = jax_layouts(distshift)
    for seed in range(4):
        env.reset(seed=seed)
        want = distshift.from_farama(env, CW, CH)
        assert (batch.grid == np.asarray(want.grid)).all()
        assert (batch.agent_pos == np.asarray(want.agent_pos)).all()
        assert (batch.agent_dir == int(want.agent_dir)).all()


# ---------------------------------------------------------------- LavaGapS7


def lavagap_features(grids):
    """(gap x, gap y) and a rebuilt grid from them (to check nothing else varies)."""
    lava = grids[..., 0] == 9
    gap_x = lava.any(axis=2).argmax(axis=1)
    column = lava[np.arange(len(grids)), gap_x]  # [n, H]
    inner = np.arange(grids.shape[2])
    gap_y = (~column & (inner >= 1) & (inner <= grids.shape[2] - 2)).argmax(axis=1)
    return gap_x, gap_y


def lavagap_rebuild(gap_x, gap_y):
    size = lavagap.SIZE
    grid = np.zeros((size, size, 3), np.int32)
    grid[:] = WALL_CELL
    grid[1 : size - 1, 1 : size - 1] = EMPTY
    grid[size - 2, size - 2] = (8, 1, 0)
    grid[gap_x, 1 : size - 1] = (9, 0, 0)
    grid[gap_x, gap_y] = EMPTY
    return grid


def test_lavagap_structure(lavagap_samples):
    for grids, pos, dirs in lavagap_samples:
        gap_x, gap_y = lavagap_features(grids)
        for i in range(0, len(grids), 97):
            np.testing.assert_array_equal(grids[i], lavagap_rebuild(gap_x[i], gap_y[i]))
        assert (pos == (1, 1)).all() and (dirs == 0).all()
        assert set(gap_x.tolist()) <= {2, 3, 4} and set(gap_y.tolist()) <= {1, 2, 3, 4, 5}


def test_lavagap_distribution(lavagap_samples):
    (jg, jp, jd), (fg, fp, fd) = lavagap_samples

    # the whole layout as one category (15 possible): grid, agent position and direction
    def whole(g, p, d):
        return np.concatenate([g.reshape(len(g), -1), p, d[:, None]], axis=1)

    assert pvalue(whole(jg, jp, jd), whole(fg, fp, fd)) > P_MIN
    assert len(np.unique(row_ids(whole(jg, jp, jd)))) == 15
    assert len(np.unique(np.concatenate([row_ids(whole(jg, jp, jd)), row_ids(whole(fg, fp, fd))]))) == 15
    jx, jy = lavagap_features(jg)
    fx, fy = lavagap_features(fg)
    assert pvalue(jx, fx) > P_MIN and pvalue(jy, fy) > P_MIN


# ---------------------------------------------------------------- DoorKey-6x6


def doorkey_features(grids, pos, dirs):
    """(split, door y, key x, key y, agent x, agent y, dir) per layout."""
    n = len(grids)
    door = np.argwhere(grids[..., 0] == DOOR)
    key = np.argwhere(grids[..., 0] == KEY)
    assert len(door) == n and len(key) == n  # exactly one door and one key each
    return np.column_stack([door[:, 1], door[:, 2], key[:, 1], key[:, 2], pos, dirs])


def doorkey_rebuild(split, door_y, key_x, key_y):
    size = doorkey.SIZE
    grid = np.zeros((size, size, 3), np.int32)
    grid[:] = WALL_CELL
    grid[1 : size - 1, 1 : size - 1] = EMPTY
    grid[size - 2, size - 2] = (8, 1, 0)
    grid[split, :] = WALL_CELL
    grid[split, door_y] = doorkey.DOOR_CELL
    grid[key_x, key_y] = doorkey.KEY_CELL
    return grid


def test_doorkey_structure(doorkey_samples):
    for grids, pos, dirs in doorkey_samples:
        f = doorkey_features(grids, pos, dirs)
        for i in range(0, len(grids), 31):
            np.testing.assert_array_equal(grids[i], doorkey_rebuild(*f[i, :4]))
        split, key_x, agent_x = f[:, 0], f[:, 2], f[:, 4]
        assert (key_x < split).all() and (agent_x < split).all()  # both left of the wall
        assert ((f[:, 2:4] != f[:, 4:6]).any(axis=1)).all()  # the key is never under the agent


def test_doorkey_distribution(doorkey_samples):
    (jg, jp, jd), (fg, fp, fd) = doorkey_samples
    jf, ff = doorkey_features(jg, jp, jd), doorkey_features(fg, fp, fd)
    split, door_y, key, agent, direction = [0], [1], [2, 3], [4, 5], [6]
    for cols in [
        split,
        door_y,
        direction,
        split + agent,
        split + key,
        split + agent + key,  # 68 categories: where agent and key lie jointly, given the wall
        split + door_y + direction,
    ]:
        assert pvalue(jf[:, cols], ff[:, cols]) > P_MIN, cols
    # support: all 816 layouts (wall 2 or 3, agent, direction, door row, key) occur, Farama's among them
    whole_j = np.unique(row_ids(np.concatenate([jg.reshape(len(jg), -1), jp, jd[:, None]], axis=1)))
    whole_f = np.unique(row_ids(np.concatenate([fg.reshape(len(fg), -1), fp, fd[:, None]], axis=1)))
    assert len(whole_j) == 4 * 4 * 3 * 3 + 8 * 4 * 3 * 7 == 816
    assert len(np.union1d(whole_j, whole_f)) == 816


# ---------------------------------------------------------------- power: wrong distributions fail


def test_statistics_catch_wrong_distributions(lavagap_samples, doorkey_samples):
    """Plausible porting mistakes, applied to the JAX samples, are rejected by the same tests."""
    rng = np.random.default_rng(0)
    (jg, _, _), (fg, _, _) = lavagap_samples
    jx, jy = lavagap_features(jg)
    fx, fy = lavagap_features(fg)
    assert pvalue(rng.integers(1, 5, N_JAX), fy) < P_MIN  # gap row in [1, size-2): one row short
    assert pvalue(rng.integers(2, 6, N_JAX), fx) < P_MIN  # gap column in [2, size-1)

    (jg, jp, jd), (fg, fp, fd) = doorkey_samples
    jf, ff = doorkey_features(jg, jp, jd), doorkey_features(fg, fp, fd)
    assert pvalue(rng.integers(1, 5, N_JAX), ff[:, 1]) < P_MIN  # door row in [1, height-1)
    assert pvalue(np.zeros(N_JAX, int), ff[:, 6]) < P_MIN  # direction fixed
    # a subtle one: 10% of agents facing right instead of uniform
    mixed = np.where(rng.random(N_JAX) < 0.1, 0, jf[:, 6])
    assert pvalue(mixed, ff[:, 6]) < P_MIN
    # the key placed without avoiding the agent (`exclude` forgotten)
    on_agent = jf.copy()
    on_agent[:, 2] = rng.integers(1, jf[:, 0])
    on_agent[:, 3] = rng.integers(1, 5, N_JAX)
    assert pvalue(on_agent[:, [0, 4, 5, 2, 3]], ff[:, [0, 4, 5, 2, 3]]) < P_MIN
    # key drawn first and the agent then placed among all left cells but with x=1 twice as likely
    wrong = jf.copy()
    for i in range(N_JAX):
        cells = [(x, y) for x in range(1, wrong[i, 0]) for y in range(1, 5) if (x, y) != tuple(wrong[i, 2:4])]
        weights = np.array([2.0 if x == 1 else 1.0 for x, _ in cells])
        wrong[i, 4:6] = cells[rng.choice(len(cells), p=weights / weights.sum())]
    assert pvalue(wrong[:, [0, 4, 5]], ff[:, [0, 4, 5]]) < P_MIN
