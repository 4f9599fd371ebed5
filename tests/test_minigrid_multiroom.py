"""MultiRoom-N2-S4 generator: shapes under jit/vmap, layout statistics against Farama's `MultiRoomEnv`, power
of those tests against wrong procedures, the exact room law's sampler, and the `from_farama` round trip.

Every statistic is read off the world grid and agent alone (`features`), so Farama's layouts (through
`from_farama`) and the JAX ones go through the same code. Each is compared three ways with Pearson
chi-square tests: Farama's sample and the JAX sample each against the exact marginal (from the enumerated
room law `multiroom.OUTCOMES` or, for colour/direction/offsets, the uniform law minigrid draws from), and the
two samples against each other. A category of exact probability 0 must never occur.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import jax
import jax.numpy as jnp
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
import pytest
from mtrl.envs.minigrid.layout import (
    CLOSED,
    COLOR_NAME_TO_ID,
    DOOR,
    EMPTY,
    GOAL,
    GOAL_CELL,
    OPEN,
    WALL_CELL,
)
from mtrl.envs.minigrid.tasks import multiroom
from mtrl.envs.minigrid.tasks.multiroom import TASK, from_farama, generate
from scipy import stats

W = H = 25
CANVAS = (27, 26)  # larger than the task, non-square: exercises padding and the [x, y] indexing
N_FARAMA = 3000
N_JAX = 12000
P_MIN = 1e-3
"""Accept a chi-square test above this p-value: a correct generator fails one with probability 1e-3 per
fresh seed (seeds are fixed here, so outcomes are deterministic; ~40 tests run, so a correct generator
would pass all with probability ~0.96 on fresh seeds). The sparsest test, Farama's 462-cell first-room
position, has >= 5.6 expected counts per cell, enough for the chi-square law."""
P_WRONG = 1e-6
"""A wrong procedure, sampled at Farama's sample size, must be rejected by the exact law far below P_MIN."""
INTERIOR = [(1, 1), (1, 2), (2, 1), (2, 2)]
_R0 = multiroom.OUTCOMES[0]
TRIES_OK = np.zeros((W, H), int)
np.add.at(TRIES_OK, (_R0[:, 0], _R0[:, 1]), 1)
"""For each first-room position, how many of the 12 equally likely second-room tries fit the world: bins
the first-room position by how much Farama's attempt-level retry weights it, the statistic most sensitive
to a wrong retry rule."""


def code(xy) -> np.ndarray:
    """One integer per 2-d offset or position (components in -10..89)."""
    xy = np.asarray(xy)
    return (xy[..., 0] + 10) * 100 + (xy[..., 1] + 10)


def border(tops: np.ndarray) -> np.ndarray:
    """`[n, W, H]` masks of the 4×4 rooms' walls at `tops` [n, 2]."""
    xs = np.arange(W)[None, :, None] - tops[:, 0, None, None]
    ys = np.arange(H)[None, None, :] - tops[:, 1, None, None]
    inside = (xs >= 0) & (xs < 4) & (ys >= 0) & (ys < 4)
    return inside & ((xs == 0) | (xs == 3) | (ys == 0) | (ys == 3))


def features(grids, agent_pos, agent_dir) -> dict[str, np.ndarray]:
    """The layout statistics of a batch, plus `well_formed`: the world is exactly two 4×4 rooms (walls),
    one door on a wall, one goal, everything else empty, with the agent in a room's interior (the first
    room) and the goal in the other's. Room tops are found from the agent's / goal's neighbours: a cell of
    a 2×2 interior has a wall on exactly one side per axis."""
    world = np.asarray(grids)[:, :W, :H].astype(np.int16)
    agent_pos, agent_dir = np.asarray(agent_pos), np.asarray(agent_dir)
    n, r = len(world), np.arange(len(world))
    obj = world[..., 0]
    empty = (world == np.array(EMPTY)).all(-1)

    def locate(kind):
        flat = (obj == kind).reshape(n, -1)
        pos = np.stack(np.divmod(flat.argmax(1), H), 1)
        return pos, flat.sum(1) == 1

    door, one_door = locate(DOOR)
    goal, one_goal = locate(GOAL)

    def room_of(pos):
        x, y = pos[:, 0], pos[:, 1]
        step_x = empty[r, np.clip(x - 1, 0, W - 1), y]
        step_y = empty[r, x, np.clip(y - 1, 0, H - 1)]
        return pos - 1 - np.stack([step_x, step_y], 1)

    room0, room1 = room_of(agent_pos), room_of(goal)
    walls0, walls1 = border(room0), border(room1)
    rebuilt = np.broadcast_to(np.array(EMPTY, np.int16), world.shape).copy()
    rebuilt[walls0 | walls1] = WALL_CELL
    rebuilt[r, door[:, 0], door[:, 1]] = world[r, door[:, 0], door[:, 1]]
    rebuilt[r, goal[:, 0], goal[:, 1]] = GOAL_CELL
    in_interior = lambda pos, top: ((pos - top >= 1) & (pos - top <= 2)).all(1)  # noqa: E731
    well_formed = (
        (rebuilt == world).all((1, 2, 3))
        & one_door
        & one_goal
        & walls0[r, door[:, 0], door[:, 1]]
        & walls1[r, door[:, 0], door[:, 1]]
        & in_interior(agent_pos, room0)
        & in_interior(goal, room1)
        & empty[r, agent_pos[:, 0], agent_pos[:, 1]]
        & (code(room0) != code(room1))
    )
    return {
        "well_formed": well_formed,
        "room0_x": room0[:, 0],
        "room0_y": room0[:, 1],
        "room0_xy": code(room0),
        "room0_tries_ok": TRIES_OK[np.clip(room0[:, 0], 0, W - 1), np.clip(room0[:, 1], 0, H - 1)],
        "room1_rel": code(room1 - room0),
        "door_rel": code(door - room0),
        "door_color": world[r, door[:, 0], door[:, 1], 1],
        "door_state": world[r, door[:, 0], door[:, 1], 2],
        "agent_rel": code(agent_pos - room0),
        "agent_dir": agent_dir,
        "goal_rel": code(goal - room1),
        "n_free": empty.sum((1, 2)),
    }


def exact_marginals(outcomes=multiroom.OUTCOMES) -> dict[str, dict[int, float]]:
    """Each statistic's exact law: the room ones from the enumerated room law, the others uniform (minigrid
    draws the door colour, agent direction and free interior cells uniformly; the door is `Door(color)`)."""
    room0, door, room1, probs = outcomes

    def law(values):
        out: dict[int, float] = {}
        for v, p in zip(np.asarray(values).tolist(), probs, strict=True):
            out[v] = out.get(v, 0.0) + p
        return out

    shared_wall = 4 - np.abs(room1 - room0).min(1)  # 4 or 3 wall cells in common
    uniform = lambda values: {v: 1 / len(values) for v in values}  # noqa: E731
    return {
        "room0_x": law(room0[:, 0]),
        "room0_y": law(room0[:, 1]),
        "room0_xy": law(code(room0)),
        "room0_tries_ok": law(TRIES_OK[room0[:, 0], room0[:, 1]]),
        "room1_rel": law(code(room1 - room0)),
        "door_rel": law(code(door - room0)),
        "n_free": law(W * H - (24 - shared_wall) - 1),  # all but 2×12 walls (door included), the goal
        "door_color": uniform(sorted(COLOR_NAME_TO_ID.values())),
        "door_state": {CLOSED: 1.0},
        "agent_rel": uniform(code(INTERIOR).tolist()),
        "goal_rel": uniform(code(INTERIOR).tolist()),
        "agent_dir": uniform([0, 1, 2, 3]),
    }


EXACT = exact_marginals()


def gof_pvalue(values: np.ndarray, law: dict[int, float]) -> float:
    """Chi-square goodness of fit of a sample to an exact law; 0 if a value of probability 0 occurs."""
    cats, counts = np.unique(values, return_counts=True)
    if any(int(c) not in law for c in cats):
        return 0.0
    keys = sorted(law)
    observed = np.array([counts[cats == k].sum() for k in keys], float)
    expected = np.array([law[k] for k in keys]) * len(values)
    if len(keys) == 1:
        return 1.0
    return float(stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue)


def homogeneity_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Chi-square test that two samples come from the same law (categories seen in either)."""
    cats = np.union1d(a, b)
    if len(cats) == 1:
        return 1.0
    table = np.stack([[np.sum(a == c) for c in cats], [np.sum(b == c) for c in cats]])
    return float(stats.chi2_contingency(table, correction=False).pvalue)


@functools.cache
def jax_sampler(outcomes_variant: int | None = None):
    """A jitted batch generator; `outcomes_variant` = k swaps in the room law of a procedure that makes
    only k tries at the second room per attempt (Farama makes 8)."""
    outcomes = None
    if outcomes_variant is not None:
        outcomes = multiroom._outcome_table(W, H, 4, outcomes_variant)
    gen = functools.partial(generate, canvas_width=CANVAS[0], canvas_height=CANVAS[1], outcomes=outcomes)
    return jax.jit(jax.vmap(gen))


def jax_features(n: int, seed: int, outcomes_variant: int | None = None) -> dict[str, np.ndarray]:
    lay = jax_sampler(outcomes_variant)(jax.random.split(jax.random.PRNGKey(seed), n))
    return features(lay.grid, lay.agent_pos, lay.agent_dir)


@pytest.fixture(scope="module")
def farama_env():
    return gym.make(TASK.env_id).unwrapped


@pytest.fixture(scope="module")
def farama_feats(farama_env):
    grids, pos, dirs = [], [], []
    for seed in range(N_FARAMA):
        farama_env.reset(seed=seed)
        grids.append(farama_env.grid.encode())
        pos.append(farama_env.agent_pos)
        dirs.append(farama_env.agent_dir)
    return features(np.stack(grids), np.array(pos), np.array(dirs))


@pytest.fixture(scope="module")
def jax_layouts():
    return jax_sampler()(jax.random.split(jax.random.PRNGKey(0), N_JAX))


@pytest.fixture(scope="module")
def jax_feats(jax_layouts):
    return features(jax_layouts.grid, jax_layouts.agent_pos, jax_layouts.agent_dir)


def test_task_matches_farama_settings(farama_env):
    assert (TASK.width, TASK.height) == (farama_env.width, farama_env.height) == (W, H)
    assert TASK.max_steps == farama_env.max_steps == 40
    assert TASK.see_through_walls == farama_env.see_through_walls is False
    assert not TASK.pickup_is_toggle


def test_shapes_jit_vmap(jax_layouts):
    """The jitted, vmapped generator's output (the same batch the statistics tests read)."""
    lay = jax_layouts
    assert TASK.generate is generate
    assert lay.grid.shape == (N_JAX, *CANVAS, 3) and lay.grid.dtype == jnp.int32
    assert lay.agent_pos.shape == (N_JAX, 2) and lay.agent_pos.dtype == jnp.int32
    assert lay.agent_dir.shape == (N_JAX,) and lay.agent_dir.dtype == jnp.int32
    grid = np.asarray(lay.grid)
    assert (grid[:, W:] == WALL_CELL).all() and (grid[:, :, H:] == WALL_CELL).all()  # padding is wall
    for rule_pos in (lay.success_pos, lay.failure_pos, lay.red_door, lay.blue_door):
        assert (np.asarray(rule_pos) == -1).all()  # MultiRoom has no rule positions


def test_exact_room_law_is_a_distribution():
    room0, door, room1, probs = multiroom.OUTCOMES
    assert np.isclose(probs.sum(), 1.0) and (probs > 0).all()
    outcomes = zip(code(room0).tolist(), code(door).tolist(), code(room1).tolist(), strict=True)
    assert len(set(outcomes)) == len(probs)
    # first rooms fit x + 4 <= 25 and y + 4 < 25 (the strict bound leaves the bottom row unused)
    assert set(EXACT["room0_x"]) == set(range(22)) and set(EXACT["room0_y"]) == set(range(21))


def test_room_law_sampler_matches_exact_joint():
    """`generate`'s inverse-CDF draw reproduces the full joint (room0, door, room1) law: 200k cheap draws,
    ~43 expected per outcome."""
    n = 200_000
    draw = jax.jit(jax.vmap(lambda k: multiroom._draw_rooms(k, multiroom.OUTCOMES)))
    r0, d, r1 = (np.asarray(a) for a in draw(jax.random.split(jax.random.PRNGKey(7), n)))
    room0, door, room1, probs = multiroom.OUTCOMES
    keys = lambda a, b, c: zip(code(a).tolist(), code(b).tolist(), code(c).tolist(), strict=True)  # noqa: E731
    index = {key: i for i, key in enumerate(keys(room0, door, room1))}
    counts = np.bincount([index[k] for k in keys(r0, d, r1)], minlength=len(probs))
    assert stats.chisquare(counts, probs * n).pvalue > P_MIN


def test_layouts_are_two_4x4_rooms(farama_feats, jax_feats):
    """Room sizes (always 4×4 here) and the whole world's structure, for every sampled layout."""
    assert farama_feats["well_formed"].all()
    assert jax_feats["well_formed"].all()


@pytest.mark.parametrize("stat", sorted(EXACT))
def test_statistic_matches_exact_law(farama_feats, jax_feats, stat):
    assert gof_pvalue(farama_feats[stat], EXACT[stat]) > P_MIN, "Farama vs the exact law"
    assert gof_pvalue(jax_feats[stat], EXACT[stat]) > P_MIN, "JAX vs the exact law"


@pytest.mark.parametrize("stat", sorted(EXACT))
def test_statistic_matches_farama(farama_feats, jax_feats, stat):
    assert homogeneity_pvalue(farama_feats[stat], jax_feats[stat]) > P_MIN


def _wrong(feats: dict[str, np.ndarray], variant: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A correct sample edited into a deliberately wrong procedure's."""
    feats = dict(feats)
    n = len(feats["agent_dir"])
    if variant == "fixed_dir":
        feats["agent_dir"] = np.zeros(n, int)
    elif variant == "random_door_state":  # a door drawn open or closed at random
        feats["door_state"] = rng.choice([OPEN, CLOSED], n)
    elif variant == "five_colours":  # a colour excluded as if a previous door existed
        colors = feats["door_color"]
        feats["door_color"] = np.where(colors == COLOR_NAME_TO_ID["red"], COLOR_NAME_TO_ID["blue"], colors)
    return feats


WRONG = ["one_try", "two_tries", "fixed_dir", "random_door_state", "five_colours"]


@pytest.mark.parametrize("variant", WRONG)
def test_wrong_procedures_are_caught(farama_feats, jax_feats, variant):
    """At Farama's sample size, each wrong procedure fails some statistic's test against the exact law (far
    below P_MIN) and against Farama's sample (two samples of 3000: less power, so at the suite's P_MIN).
    `one_try`/`two_tries`: an attempt restarts after 1/2 failed tries at the second room instead of 8 (the
    room law's only non-trivial weighting; `room0_tries_ok` TV 0.110/0.043)."""
    if variant in ("one_try", "two_tries"):
        wrong = jax_features(N_FARAMA, seed=11, outcomes_variant=1 if variant == "one_try" else 2)
    else:
        correct = {name: values[-N_FARAMA:] for name, values in jax_feats.items()}
        wrong = _wrong(correct, variant, np.random.default_rng(0))
    gof = min(gof_pvalue(wrong[s], EXACT[s]) for s in EXACT)
    vs_farama = min(homogeneity_pvalue(farama_feats[s], wrong[s]) for s in EXACT)
    assert gof < P_WRONG and vs_farama < P_MIN


@pytest.mark.parametrize("seed", [0, 1, 2, 123, 9999])
def test_from_farama_round_trip(farama_env, seed):
    farama_env.reset(seed=seed)
    lay = from_farama(farama_env, *CANVAS)
    grid = np.asarray(lay.grid)
    assert grid.shape == (*CANVAS, 3)
    np.testing.assert_array_equal(grid[:W, :H], farama_env.grid.encode())
    assert (grid[W:] == WALL_CELL).all() and (grid[:, H:] == WALL_CELL).all()
    assert tuple(np.asarray(lay.agent_pos)) == tuple(farama_env.agent_pos)
    assert int(lay.agent_dir) == farama_env.agent_dir
    # the statistics read off the grid agree with Farama's own record of the rooms
    feats = features(grid[None], np.asarray(lay.agent_pos)[None], np.asarray(lay.agent_dir)[None])
    first, second = farama_env.rooms
    assert feats["well_formed"][0]
    assert first.size == second.size == (4, 4)
    assert feats["room0_xy"][0] == code(first.top)
    assert feats["room1_rel"][0] == code(np.subtract(second.top, first.top))
    assert feats["door_rel"][0] == code(np.subtract(second.entryDoorPos, first.top))
    assert feats["goal_rel"][0] == code(np.subtract(farama_env.goal_pos, second.top))
