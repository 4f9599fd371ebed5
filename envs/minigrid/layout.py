"""MiniGrid worlds as arrays: the cell encoding, the `Layout` a generator returns, and drawing helpers.

A world is a `[width, height, 3]` integer grid indexed `[x, y]`, each cell holding Farama minigrid's own
encoding (object, colour, state) — the triple its `Grid.encode` writes, so an observation is a crop of the
world. Empty cells are `EMPTY` = (1, 0, 0), as minigrid encodes `None`. Every task's world sits in the
top-left corner of one canvas shared by the benchmark's tasks (the largest task's size); canvas cells
outside the task are walls, which is exactly what minigrid shows for cells outside its grid (`Grid.slice`
fills them with `Wall()`), so padding changes no observation.

Generators are pure functions `key -> Layout`, traceable by `jit`/`vmap`. Where minigrid draws a position by
rejection sampling (`place_obj`: uniform proposals in a rectangle until one is free), `sample_free_cell`
draws uniformly from the free cells of the rectangle directly: the same distribution without the loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

# minigrid.core.constants: OBJECT_TO_IDX, COLOR_TO_IDX, STATE_TO_IDX
UNSEEN, EMPTY_ID, WALL, FLOOR, DOOR, KEY, BALL, BOX, GOAL, LAVA, AGENT = range(11)
RED, GREEN, BLUE, PURPLE, YELLOW, GREY = range(6)
COLOR_NAMES = ("blue", "green", "grey", "purple", "red", "yellow")
"""minigrid's `COLOR_NAMES` (sorted names): what `_rand_color` / `_rand_elem(COLOR_NAMES)` index into."""
COLOR_NAME_TO_ID = {
    "red": RED,
    "green": GREEN,
    "blue": BLUE,
    "purple": PURPLE,
    "yellow": YELLOW,
    "grey": GREY,
}
OPEN, CLOSED, LOCKED = range(3)
DIR_TO_VEC = jnp.array([[1, 0], [0, 1], [-1, 0], [0, -1]], jnp.int32)
"""Direction 0 faces +x (right), 1 +y (down), 2 -x (left), 3 -y (up), as minigrid's `DIR_TO_VEC`."""

EMPTY = (EMPTY_ID, 0, 0)
WALL_CELL = (WALL, GREY, 0)
GOAL_CELL = (GOAL, GREEN, 0)
LAVA_CELL = (LAVA, RED, 0)
NO_POS = (-1, -1)
"""A position that no agent reaches: the default of the optional rule positions of a `Layout`."""


def cell(obj: int, color: int = 0, state: int = 0) -> tuple[int, int, int]:
    """A cell triple (object, colour, state)."""
    return (obj, color, state)


@struct.dataclass
class Layout:
    """A freshly generated episode: the world and the agent, plus the positions task rules look at.

    The rule positions are (-1, -1) where a task has no such rule: `success_pos`/`failure_pos` are
    MemoryEnv's cells next to the matching and the other object (stepping onto them ends the episode),
    `red_door`/`blue_door` RedBlueDoorEnv's two doors (opening blue after red succeeds, before it fails).
    """

    grid: jax.Array  # int32 [width, height, 3]
    agent_pos: jax.Array  # int32 [2] (x, y)
    agent_dir: jax.Array  # int32 []
    success_pos: jax.Array = struct.field(default_factory=lambda: jnp.array(NO_POS, jnp.int32))
    failure_pos: jax.Array = struct.field(default_factory=lambda: jnp.array(NO_POS, jnp.int32))
    red_door: jax.Array = struct.field(default_factory=lambda: jnp.array(NO_POS, jnp.int32))
    blue_door: jax.Array = struct.field(default_factory=lambda: jnp.array(NO_POS, jnp.int32))


def canvas(width: int, height: int, task_width: int, task_height: int) -> jax.Array:
    """An empty `task_width × task_height` world in the top-left of a `width × height` canvas of walls
    (minigrid's fresh `Grid(w, h)` is all empty; its generators then draw the walls they want)."""
    if task_width > width or task_height > height:
        raise ValueError(f"a {task_width}x{task_height} task does not fit a {width}x{height} canvas")
    grid = jnp.broadcast_to(jnp.array(WALL_CELL, jnp.int32), (width, height, 3))
    return grid.at[:task_width, :task_height].set(jnp.array(EMPTY, jnp.int32))


def put(grid: jax.Array, pos, value) -> jax.Array:
    """`grid` with the cell at `pos` = (x, y) set to the triple `value` (positions may be traced)."""
    return grid.at[pos[0], pos[1]].set(jnp.asarray(value, jnp.int32))


def horz_wall(grid: jax.Array, x: int, y: int, length: int, value=WALL_CELL) -> jax.Array:
    """minigrid `Grid.horz_wall`: `length` cells from (x, y) to the right (static arguments)."""
    return grid.at[x : x + length, y].set(jnp.asarray(value, jnp.int32))


def vert_wall(grid: jax.Array, x: int, y: int, length: int, value=WALL_CELL) -> jax.Array:
    """minigrid `Grid.vert_wall`: `length` cells from (x, y) downwards (static arguments)."""
    return grid.at[x, y : y + length].set(jnp.asarray(value, jnp.int32))


def wall_rect(grid: jax.Array, x: int, y: int, w: int, h: int) -> jax.Array:
    """minigrid `Grid.wall_rect`: the border of the `w × h` rectangle at (x, y) (static arguments)."""
    grid = horz_wall(grid, x, y, w)
    grid = horz_wall(grid, x, y + h - 1, w)
    grid = vert_wall(grid, x, y, h)
    return vert_wall(grid, x + w - 1, y, h)


def is_empty(grid: jax.Array) -> jax.Array:
    """`[width, height]` mask of empty cells (minigrid's `grid.get(x, y) is None`)."""
    return (grid[..., 0] == EMPTY_ID) & (grid[..., 1] == 0) & (grid[..., 2] == 0)


def sample_free_cell(
    key: jax.Array,
    grid: jax.Array,
    top=(0, 0),
    size=None,
    exclude=None,
    allowed: jax.Array | None = None,
) -> jax.Array:
    """A uniformly drawn empty cell of the rectangle at `top` of `size` (minigrid `place_obj`): the same
    distribution as its rejection sampling. `exclude` is a position to avoid (the agent), `allowed` an
    optional `[width, height]` mask (the complement of a `reject_fn`). `top`/`size` may be traced; the
    rectangle is clipped to the grid as minigrid clips it. Returns int32 (x, y)."""
    width, height = grid.shape[:2]
    xs = jnp.arange(width)[:, None]
    ys = jnp.arange(height)[None, :]
    top = jnp.maximum(jnp.asarray(top, jnp.int32), 0)
    size = jnp.asarray((width, height) if size is None else size, jnp.int32)
    inside = (xs >= top[0]) & (xs < top[0] + size[0]) & (ys >= top[1]) & (ys < top[1] + size[1])
    free = inside & is_empty(grid)
    if exclude is not None:
        exclude = jnp.asarray(exclude, jnp.int32)
        free = free & ~((xs == exclude[0]) & (ys == exclude[1]))
    if allowed is not None:
        free = free & allowed
    flat = jax.random.categorical(key, jnp.where(free.reshape(-1), 0.0, -jnp.inf))
    return jnp.stack([flat // height, flat % height]).astype(jnp.int32)


def rand_int(key: jax.Array, low, high) -> jax.Array:
    """minigrid `_rand_int`: uniform in [low, high) (bounds may be traced)."""
    return jax.random.randint(key, (), low, high, dtype=jnp.int32)


@dataclasses.dataclass(frozen=True)
class Task:
    """One MiniGrid task: its Farama id, world size, horizon, the env flags that change dynamics or
    observations, and its generator `generate(key, canvas_width, canvas_height) -> Layout`."""

    env_id: str
    """The Farama gymnasium id, e.g. "MiniGrid-LavaGapS7-v0" (what the reference backend builds)."""
    width: int
    height: int
    max_steps: int
    """minigrid's `max_steps`: the step that truncates, and the denominator of the success reward."""
    generate: Callable[[jax.Array, int, int], Layout]
    see_through_walls: bool = False
    """minigrid's `see_through_walls` (DistShift: True): no occlusion in the observation."""
    pickup_is_toggle: bool = False
    """MemoryEnv turns `pickup` into `toggle`."""


def farama_layout(env, canvas_width: int, canvas_height: int, **rule_positions) -> Layout:
    """A Farama env's world (`grid.encode()`, which writes `None` as EMPTY) in the top-left of a wall
    canvas, with its agent; `rule_positions` are passed to `Layout` as they are."""
    world = np.asarray(env.grid.encode(), np.int32)
    grid = canvas(canvas_width, canvas_height, env.width, env.height)
    grid = grid.at[: env.width, : env.height].set(jnp.asarray(world))
    return Layout(
        grid=grid,
        agent_pos=jnp.asarray(np.asarray(env.agent_pos), jnp.int32),
        agent_dir=jnp.asarray(int(env.agent_dir), jnp.int32),
        **{name: jnp.asarray(pos, jnp.int32) for name, pos in rule_positions.items()},
    )
