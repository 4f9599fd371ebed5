"""MiniGrid-MultiRoom-N2-S4-v0 in JAX: two 4×4 rooms joined by a closed door, the goal in the second.

Farama's generator (minigrid/envs/multiroom.py `MultiRoomEnv._gen_grid` / `_placeRoom`) with
minNumRooms = maxNumRooms = 2 and maxRoomSize = 4 works as follows (minSz = maxSz = 4, so every room is
4×4 and its size draws are constant):

* An *attempt* draws the first room's top-left corner uniformly from {0..22}² (`_rand_int(0, width - 2)`
  for both coordinates). It fails unless the room fits: x + 4 <= 25 and y + 4 < 25 (note the strict bound
  on y, so the bottom row is never used).
* From a fitting first room it makes up to 8 independent *tries* at the second room: an exit wall uniform
  over {right, south, north} (the entry wall, left, is excluded), a door offset uniform over the wall's two
  inner cells, and a shift of the second room along the door's wall uniform over its two values. A try
  succeeds when the second room fits the same bounds; the overlap test looks only at `roomList[:-1]`, which
  is empty here, so it never rejects anything. The first successful try is kept.
* Attempts repeat until one yields two rooms (an attempt with one room never replaces an earlier one).

The accepted layout is therefore the first successful attempt, and its law is exact in closed form:
P(room0, try) ∝ [room0 fits] · (1 − (1 − p(room0))⁸) · P(try)·[try fits] / p(room0), where p(room0) is the
chance one try fits. The middle factor is the chance an attempt from room0 succeeds (the attempt-level
retry: corner rooms whose tries mostly fail are up to 10% rarer than uniform), the last the first success
among the tries. `OUTCOMES` tabulates this law once (the 4654 possible outcomes, in numpy at import) and
`generate` draws one outcome by inverse CDF: no loop at all, so no bound on attempts is needed (Farama
itself needed at most 6 attempts over 20 000 seeded resets; 87% take one). The float32 CDF and uniform
shift the law by a total variation of 3e-5.

The door colour is uniform over the six colours (no previous door) and the door is always *closed*
(`Door(color)` defaults to closed, unlocked); the agent is uniform over the first room's 2×2 interior with a
uniform direction (`place_agent`), the goal uniform over the second room's interior (`place_obj`). Cells
outside the rooms stay empty, as in Farama (it draws no outer wall).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..layout import (
    CLOSED,
    COLOR_NAME_TO_ID,
    COLOR_NAMES,
    DOOR,
    GOAL_CELL,
    WALL_CELL,
    Layout,
    Task,
    canvas,
    farama_layout,
)

WIDTH = HEIGHT = 25
ROOM_SIZE = 4
"""minSz = maxSz = 4 for this id: both rooms are 4×4."""
TRIES = 8
"""`_placeRoom`'s `for i in range(0, 8)` over placements of the next room."""

_RIGHT, _SOUTH, _NORTH = 0, 1, 3
"""Exit walls a first room may use (its entry wall 2, left, is excluded): minigrid's wall numbering."""
_DOOR_COLOR_IDS = jnp.array([COLOR_NAME_TO_ID[name] for name in COLOR_NAMES], jnp.int32)


def _fits(x: int, y: int, width: int, height: int, size: int) -> bool:
    """`_placeRoom`'s bounds test: note `>=` on the height but `>` on the width."""
    return x >= 0 and y >= 0 and x + size <= width and y + size < height


def _outcome_table(width: int, height: int, size: int, tries: int):
    """Every accepted (first room, door, second room) and its exact probability under Farama's two-room
    procedure (see the module docstring). Returns int32 arrays room0 [n, 2], door [n, 2], room1 [n, 2]
    and the float64 probabilities [n]."""
    inner = size - 2  # door offsets 1..size-2 and shifts both take `size - 2` values
    room0s, doors, room1s, weights = [], [], [], []
    span = width - 2  # `_rand_int(0, width - 2)`, also used for y
    for x0 in range(span):
        for y0 in range(span):
            if not _fits(x0, y0, width, height, size):
                continue
            tries_ok = []  # (door, room1, probability of this try)
            for wall in (_RIGHT, _SOUTH, _NORTH):
                for offset in range(1, size - 1):
                    if wall == _RIGHT:
                        door = (x0 + size - 1, y0 + offset)
                    elif wall == _SOUTH:
                        door = (x0 + offset, y0 + size - 1)
                    else:
                        door = (x0 + offset, y0)
                    for shift in range(2 - size, 0):  # `_rand_int(d - size + 2, d)` minus d
                        if wall == _RIGHT:  # the next room's entry wall is its left one
                            room1 = (door[0], door[1] + shift)
                        elif wall == _SOUTH:  # entry on its top wall
                            room1 = (door[0] + shift, door[1])
                        else:  # entry on its south wall
                            room1 = (door[0] + shift, door[1] - size + 1)
                        if _fits(*room1, width, height, size):
                            tries_ok.append((door, room1, 1.0 / (3 * inner * inner)))
            p = sum(w for _, _, w in tries_ok)
            if p == 0.0:
                continue
            attempt_ok = 1.0 - (1.0 - p) ** tries
            for door, room1, w in tries_ok:
                room0s.append((x0, y0))
                doors.append(door)
                room1s.append(room1)
                weights.append(attempt_ok * w / p)
    weights = np.asarray(weights, np.float64)
    return (
        np.asarray(room0s, np.int32),
        np.asarray(doors, np.int32),
        np.asarray(room1s, np.int32),
        weights / weights.sum(),
    )


OUTCOMES = _outcome_table(WIDTH, HEIGHT, ROOM_SIZE, TRIES)
"""The exact law of Farama's accepted rooms (room0, door, room1, float64 probabilities); tests use it too."""


def _draw_rooms(key: jax.Array, outcomes) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One (room0 top, door, room1 top) from a static outcome table, by inverse CDF (cheaper than a
    categorical over its thousands of outcomes)."""
    room0s, doors, room1s, probs = outcomes
    cdf = np.cumsum(probs).astype(np.float32)
    cdf[-1] = 1.0
    u = jax.random.uniform(key, (), jnp.float32)
    idx = jnp.minimum(jnp.searchsorted(jnp.asarray(cdf), u, side="right"), len(probs) - 1)
    return jnp.asarray(room0s)[idx], jnp.asarray(doors)[idx], jnp.asarray(room1s)[idx]


def _offsets(grid_shape, pos: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Each cell's x and y relative to the traced `pos`, broadcastable to `[w, h]`. Drawing by masks
    rather than scatters (`put`): under `vmap` a scatter costs far more than a 25×25 select on CPU."""
    return jnp.arange(grid_shape[0])[:, None] - pos[0], jnp.arange(grid_shape[1])[None, :] - pos[1]


def _room_border(grid_shape, top: jax.Array, size: int) -> jax.Array:
    """`[w, h]` mask of the border of the `size × size` room at the traced `top` (its walls)."""
    xs, ys = _offsets(grid_shape, top)
    inside = (xs >= 0) & (xs < size) & (ys >= 0) & (ys < size)
    edge = (xs == 0) | (xs == size - 1) | (ys == 0) | (ys == size - 1)
    return inside & edge


def _at(grid_shape, pos: jax.Array) -> jax.Array:
    """`[w, h]` mask of the single cell at the traced `pos`."""
    xs, ys = _offsets(grid_shape, pos)
    return (xs == 0) & (ys == 0)


def generate(key: jax.Array, canvas_width: int, canvas_height: int, outcomes=None) -> Layout:
    """One MultiRoom-N2-S4 layout, distributed as Farama's `MultiRoomEnv._gen_grid` (module docstring).
    `outcomes` (static) replaces the room law `OUTCOMES`: tests use it to show a wrong law is caught."""
    k_rooms, k_rest = jax.random.split(key)
    room0, door, room1 = _draw_rooms(k_rooms, OUTCOMES if outcomes is None else outcomes)
    # door colour, agent direction, agent and goal offsets inside their rooms' interiors, in one draw
    inner = ROOM_SIZE - 2
    color, agent_dir, *offsets = jax.random.randint(
        k_rest, (6,), 0, jnp.array([len(COLOR_NAMES), 4, inner, inner, inner, inner]), dtype=jnp.int32
    )

    grid = canvas(canvas_width, canvas_height, WIDTH, HEIGHT)
    walls = _room_border(grid.shape, room0, ROOM_SIZE) | _room_border(grid.shape, room1, ROOM_SIZE)
    grid = jnp.where(walls[..., None], jnp.array(WALL_CELL, jnp.int32), grid)
    door_cell = jnp.stack([jnp.int32(DOOR), _DOOR_COLOR_IDS[color], jnp.int32(CLOSED)])
    grid = jnp.where(_at(grid.shape, door)[..., None], door_cell, grid)

    # place_agent(room0.top, room0.size) and place_obj(Goal(), room1.top, room1.size): the free cells of a
    # room's rectangle are exactly its 2×2 interior (the other room only shares a wall line, the agent is
    # in the other room), so their rejection sampling is a uniform interior cell, drawn here directly.
    agent_pos = room0 + 1 + jnp.stack(offsets[:2])
    goal = room1 + 1 + jnp.stack(offsets[2:])
    grid = jnp.where(_at(grid.shape, goal)[..., None], jnp.array(GOAL_CELL, jnp.int32), grid)
    return Layout(grid=grid, agent_pos=agent_pos, agent_dir=agent_dir)


def from_farama(env, canvas_width: int, canvas_height: int) -> Layout:
    """A live (unwrapped, reset) Farama MultiRoomEnv as a `Layout` (MultiRoom has no rule positions)."""
    return farama_layout(env, canvas_width, canvas_height)


TASK = Task(
    env_id="MiniGrid-MultiRoom-N2-S4-v0",
    width=WIDTH,
    height=HEIGHT,
    max_steps=40,  # MultiRoomEnv: maxNumRooms * 20
    generate=generate,
    see_through_walls=False,
)
