"""SimpleCrossingS9N2 generator: shapes under jit/vmap, layout distribution against Farama's `CrossingEnv`,
power of the distribution test against plausible wrong procedures, and the `from_farama` round trip.

The whole layout (world grid + agent) takes only 456 values, so the tests compare full layout frequencies:
Farama's reset samples, the JAX generator's samples and an exact pmf enumerated from the procedure in
minigrid/envs/crossing.py `_gen_grid` (uniform 2-subset of rivers, uniformly shuffled path, openings drawn
from the current room's span), with Pearson chi-square tests.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque

import gymnasium as gym
import jax
import jax.numpy as jnp
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
import pytest
from mtrl.envs.minigrid.layout import EMPTY, GOAL_CELL, WALL, WALL_CELL
from mtrl.envs.minigrid.tasks.crossing import TASK, from_farama, generate
from scipy import stats

SIZE = 9
CANVAS = (11, 13)  # larger than the task, non-square: exercises padding and the [x, y] indexing
N_FARAMA = 3000
N_JAX = 30000
P_MIN = 1e-3
"""Accept a chi-square test above this p-value: a correct generator fails it with probability 1e-3 per fresh
seed (the seeds here are fixed, so the outcome is deterministic). The smallest layout probability is
1/735 (two parallel walls, 1/15 · 1/49), i.e. 4.1 expected Farama counts, enough for the chi-square law."""
P_WRONG = 1e-6
"""A wrong procedure must be rejected far below P_MIN."""


def layout_key(world: np.ndarray, agent_pos, agent_dir) -> bytes:
    """A hashable id of a whole layout: the task's world encoding plus the agent's pose."""
    world = np.asarray(world, np.uint8)[:SIZE, :SIZE]
    return world.tobytes() + bytes([*np.asarray(agent_pos, np.uint8), int(agent_dir)])


def exact_pmf(variant: str = "farama") -> dict[bytes, float]:
    """The layout pmf of `CrossingEnv._gen_grid` (size 9, two Wall rivers), enumerated branch by branch;
    `variant` names a deliberately wrong procedure used to show the tests' power."""
    rivers = [("v", p) for p in (2, 4, 6)] + [("h", p) for p in (2, 4, 6)]
    pairs = list(itertools.combinations(rivers, 2))
    base = np.zeros((SIZE, SIZE, 3), np.uint8)
    base[...] = EMPTY
    base[[0, -1], :] = WALL_CELL
    base[:, [0, -1]] = WALL_CELL
    base[SIZE - 2, SIZE - 2] = GOAL_CELL
    if variant == "kind_first":  # pick {vv, hh, vh} uniformly, then positions uniformly within the kind
        by_kind = Counter(tuple(sorted(d for d, _ in pair)) for pair in pairs)
        pair_probs = [1 / 3 / by_kind[tuple(sorted(d for d, _ in pair))] for pair in pairs]
    else:
        pair_probs = [1 / len(pairs)] * len(pairs)
    dirs = range(4) if variant == "uniform_dir" else [0]
    whole = range(1, SIZE - 1)
    pmf: dict[bytes, float] = Counter()
    for pair, p_pair in zip(pairs, pair_probs, strict=True):
        cols = sorted(p for d, p in pair if d == "v")
        rows = sorted(p for d, p in pair if d == "h")
        world = base.copy()
        for x in cols:
            world[x, 1 : SIZE - 1] = WALL_CELL
        for y in rows:
            world[1 : SIZE - 1, y] = WALL_CELL
        lim_x, lim_y = [0, *cols, SIZE - 1], [0, *rows, SIZE - 1]
        orders = sorted(set(itertools.permutations("R" * len(cols) + "D" * len(rows))))
        if variant == "fixed_order":  # always cross the vertical walls first
            orders = orders[-1:]
        for order in orders:
            # each step: R opens (lim_x[i+1], y) for y in the current room's rows, D opens (x, lim_y[j+1])
            branches = [(world, 1.0 / len(orders), 0, 0)]
            for move in order:
                nxt = []
                for w, p, i, j in branches:
                    if move == "R":
                        span = whole if variant == "whole_wall" else range(lim_y[j] + 1, lim_y[j + 1])
                        cells, i2, j2 = [(lim_x[i + 1], y) for y in span], i + 1, j
                    else:
                        span = whole if variant == "whole_wall" else range(lim_x[i] + 1, lim_x[i + 1])
                        cells, i2, j2 = [(x, lim_y[j + 1]) for x in span], i, j + 1
                    for c in cells:
                        w2 = w.copy()
                        w2[c] = EMPTY
                        nxt.append((w2, p / len(cells), i2, j2))
                branches = nxt
            for w, p, _, _ in branches:
                for d in dirs:
                    pmf[layout_key(w, (1, 1), d)] += p_pair * p / len(dirs)
    if variant == "uniform_layouts":  # every valid layout equally likely
        pmf = Counter({k: 1 / len(pmf) for k in pmf})
    return dict(pmf)


def structure(key: bytes) -> tuple:
    """A coarse summary of a layout: the columns of its vertical rivers, the rows of its horizontal ones and
    the order the path crosses them (for one of each: whether the vertical wall's opening lies above the
    horizontal wall). 24 values, each of probability ≥ 1/30: a far more sensitive test of the random choices
    most easily got wrong (which rivers, path order) than the 456-value layout."""
    walls = np.frombuffer(key[: SIZE * SIZE * 3], np.uint8).reshape(SIZE, SIZE, 3)[..., 0] == WALL
    cols = tuple(x for x in (2, 4, 6) if walls[x, 1 : SIZE - 1].sum() >= SIZE - 3)
    rows = tuple(y for y in (2, 4, 6) if walls[1 : SIZE - 1, y].sum() >= SIZE - 3)
    if cols and rows:
        gap = int(np.flatnonzero(~walls[cols[0], 1 : SIZE - 1])[0]) + 1
        return cols, rows, "RD" if gap < rows[0] else "DR"
    return cols, rows, "R" * len(cols) + "D" * len(rows)


def coarsen(counts_or_pmf) -> Counter:
    out = Counter()
    for k, v in counts_or_pmf.items():
        out[structure(k)] += v
    return out


def chi2_goodness_of_fit(counts: Counter, pmf: dict[bytes, float]) -> float:
    """Pearson chi-square p-value of `counts` against `pmf`; 0 if a count falls outside its support."""
    if set(counts) - set(pmf):
        return 0.0
    n = sum(counts.values())
    expected = np.array([n * p for p in pmf.values()])
    observed = np.array([counts.get(k, 0) for k in pmf])
    return float(stats.chi2.sf(((observed - expected) ** 2 / expected).sum(), len(pmf) - 1))


def chi2_two_sample(a: Counter, b: Counter) -> float:
    """Pearson chi-square homogeneity p-value of two samples of unequal sizes over their joint support."""
    keys = sorted(set(a) | set(b))
    o1 = np.array([a.get(k, 0) for k in keys], float)
    o2 = np.array([b.get(k, 0) for k in keys], float)
    n1, n2 = o1.sum(), o2.sum()
    stat = ((np.sqrt(n2 / n1) * o1 - np.sqrt(n1 / n2) * o2) ** 2 / (o1 + o2)).sum()
    return float(stats.chi2.sf(stat, len(keys) - 1))


def total_variation(a: Counter, pmf: dict[bytes, float]) -> float:
    n = sum(a.values())
    return 0.5 * sum(abs(a.get(k, 0) / n - pmf.get(k, 0.0)) for k in set(a) | set(pmf))


@pytest.fixture(scope="module")
def farama_counts() -> Counter:
    env = gym.make(TASK.env_id).unwrapped
    counts = Counter()
    for seed in range(N_FARAMA):
        env.reset(seed=seed)
        counts[layout_key(env.grid.encode(), env.agent_pos, env.agent_dir)] += 1
    return counts


@pytest.fixture(scope="module")
def jax_layouts():
    keys = jax.random.split(jax.random.key(2024), N_JAX)
    out = jax.jit(jax.vmap(lambda k: generate(k, *CANVAS)))(keys)
    return jax.tree.map(np.asarray, out)


@pytest.fixture(scope="module")
def jax_counts(jax_layouts) -> Counter:
    lay = jax_layouts
    return Counter(
        layout_key(g, p, d) for g, p, d in zip(lay.grid, lay.agent_pos, lay.agent_dir, strict=True)
    )


def reachable(world: np.ndarray, start, goal) -> bool:
    seen, todo = {tuple(start)}, deque([tuple(start)])
    while todo:
        x, y = todo.popleft()
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if (nx, ny) not in seen and world[nx, ny, 0] != WALL:
                seen.add((nx, ny))
                todo.append((nx, ny))
    return tuple(goal) in seen


def test_task_matches_farama_settings():
    env = gym.make(TASK.env_id).unwrapped
    assert (TASK.width, TASK.height) == (env.width, env.height) == (SIZE, SIZE)
    assert TASK.max_steps == env.max_steps == 324
    assert TASK.see_through_walls == env.see_through_walls is False
    assert not TASK.pickup_is_toggle


def test_shapes_jit_vmap(jax_layouts):
    single = jax.jit(generate, static_argnums=(1, 2))(jax.random.key(0), *CANVAS)
    assert single.grid.shape == (*CANVAS, 3) and single.grid.dtype == jnp.int32
    assert single.agent_pos.shape == (2,) and single.agent_dir.shape == ()
    lay = jax_layouts
    assert lay.grid.shape == (N_JAX, *CANVAS, 3)
    # padding outside the 9×9 world is wall, as is the world's border; the goal is bottom-right
    pad = np.ones(CANVAS, bool)
    pad[1 : SIZE - 1, 1 : SIZE - 1] = False
    np.testing.assert_array_equal(lay.grid[:, pad], np.broadcast_to(WALL_CELL, (N_JAX, pad.sum(), 3)))
    np.testing.assert_array_equal(lay.grid[:, SIZE - 2, SIZE - 2], np.broadcast_to(GOAL_CELL, (N_JAX, 3)))
    np.testing.assert_array_equal(lay.agent_pos, np.broadcast_to([1, 1], (N_JAX, 2)))
    np.testing.assert_array_equal(lay.agent_dir, 0)
    # two rivers of 7 cells (13 or 14 distinct cells as they cross or not), minus the two openings
    inner = (lay.grid[:, 1 : SIZE - 1, 1 : SIZE - 1, 0] == WALL).sum((1, 2))
    assert set(np.unique(inner)) <= {11, 12}
    for g in lay.grid[:200]:
        assert reachable(g, (1, 1), (SIZE - 2, SIZE - 2))


def test_exact_pmf_is_a_distribution():
    pmf = exact_pmf()
    assert abs(sum(pmf.values()) - 1) < 1e-12
    # parallel pairs: 6 · 7² layouts; crossing pairs: Σ over (x, y) of (y-1)(7-x) + (x-1)(7-y) = 162
    assert len(pmf) == 6 * 49 + 162 == 456


def test_layout_distribution_matches_farama(farama_counts, jax_counts):
    pmf = exact_pmf()
    # the agent's start pose is constant in Farama (dir 0 at (1, 1)); compare it as a marginal too
    farama_dirs = Counter(k[-1] for k in farama_counts.elements())
    jax_dirs = Counter(k[-1] for k in jax_counts.elements())
    assert set(farama_dirs) == set(jax_dirs) == {0}
    assert chi2_two_sample(farama_counts, jax_counts) > P_MIN
    assert chi2_goodness_of_fit(farama_counts, pmf) > P_MIN  # the enumeration is Farama's law
    assert chi2_goodness_of_fit(jax_counts, pmf) > P_MIN  # the generator is that law (10× the samples)
    # TV to the exact pmf: sampling noise alone is ≈ 0.5 Σ sqrt(2p(1-p) / (πN)) = 0.046 for the JAX sample
    # (simulated: sd 0.0017, max 0.052 over 2000 draws), so 0.06 is ~8 sd of noise
    assert total_variation(jax_counts, pmf) < 0.06


def test_path_structure_matches_farama(farama_counts, jax_counts):
    """Rivers and path order, the coarse structure of a layout (24 values): a sharper test of those draws."""
    truth = coarsen(exact_pmf())
    assert len(truth) == 24
    assert chi2_two_sample(coarsen(farama_counts), coarsen(jax_counts)) > P_MIN
    assert chi2_goodness_of_fit(coarsen(farama_counts), truth) > P_MIN
    assert chi2_goodness_of_fit(coarsen(jax_counts), truth) > P_MIN


@pytest.mark.parametrize(
    "variant", ["fixed_order", "uniform_layouts", "kind_first", "whole_wall", "uniform_dir"]
)
def test_wrong_procedures_are_caught(farama_counts, variant):
    """The same statistics reject plausible misreadings of `_gen_grid`: a path order that is not shuffled,
    a uniform draw over valid layouts, a wrong law for the kinds of rivers, openings drawn along the whole
    wall instead of the current room, a random start direction."""
    wrong = exact_pmf(variant)
    assert chi2_goodness_of_fit(farama_counts, wrong) < P_WRONG
    # a generator with that law, sampled like the JAX one, fails the two-sample test against Farama
    keys = list(wrong)
    draws = np.random.default_rng(0).multinomial(N_JAX, [wrong[k] for k in keys])
    wrong_counts = Counter({k: int(c) for k, c in zip(keys, draws, strict=True) if c})
    assert chi2_two_sample(farama_counts, wrong_counts) < P_WRONG


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_from_farama_round_trip(seed):
    env = gym.make(TASK.env_id).unwrapped
    env.reset(seed=seed)
    lay = from_farama(env, *CANVAS)
    grid = np.asarray(lay.grid)
    assert grid.shape == (*CANVAS, 3)
    np.testing.assert_array_equal(grid[:SIZE, :SIZE], env.grid.encode())
    assert (grid[SIZE:] == WALL_CELL).all() and (grid[:, SIZE:] == WALL_CELL).all()
    np.testing.assert_array_equal(lay.agent_pos, env.agent_pos)
    assert int(lay.agent_dir) == env.agent_dir


@pytest.mark.parametrize("variant", ["fixed_order", "uniform_layouts", "kind_first"])
def test_small_deviation_is_caught(variant):
    """A generator that follows a wrong procedure only 10% of the time (layout TV 0.027-0.03 from Farama's)
    is still rejected from a JAX-sized sample by the structure test (the 456-value whole-layout test is only
    borderline at this size of deviation: p ≈ 1e-6-1e-2)."""
    pmf, wrong = exact_pmf(), exact_pmf(variant)
    keys = sorted(set(pmf) | set(wrong))
    mix = [0.9 * pmf.get(k, 0.0) + 0.1 * wrong.get(k, 0.0) for k in keys]
    draws = np.random.default_rng(1).multinomial(N_JAX, mix)
    counts = Counter({k: int(c) for k, c in zip(keys, draws, strict=True) if c})
    assert chi2_goodness_of_fit(coarsen(counts), coarsen(pmf)) < P_WRONG
