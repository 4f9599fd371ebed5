"""MiniGrid-MemoryS11-v0: remember the object in the start room, then walk to its twin at the hallway's end.

Matches minigrid/envs/memory.py `MemoryEnv._gen_grid` with size 11 and random_length=False (hallway_end =
size - 3 = 8): the fixed walls of the start room, the horizontal hallway and the vertical split; the agent on
the middle row at x uniform in 1..8 (`_rand_int(1, hallway_end + 1)`, so it may start in the hallway or in
the split's opening) facing right (direction 0, not random); a green key or ball, uniform, at (1, 4) in the
start room; and the split's ends (9, 3) above / (9, 7) below holding (ball, key) or (key, ball), uniform and
independent of the start object. `success_pos` is the cell next to the twin of the start object, (9, 4) or
(9, 6), `failure_pos` the cell next to the other; stepping onto them ends the episode (the step's rule).
Farama draws in that order (agent x, start object, end objects); all three draws are independent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..layout import (
    BALL,
    GREEN,
    KEY,
    WALL_CELL,
    Layout,
    Task,
    canvas,
    farama_layout,
    horz_wall,
    put,
    rand_int,
    vert_wall,
    wall_rect,
)

SIZE = 11
MID = SIZE // 2
"""The middle row: the hallway and the agent's row."""
UPPER_ROOM_WALL = MID - 2
LOWER_ROOM_WALL = MID + 2
HALLWAY_END = SIZE - 3
"""x of the split's left wall (open at the middle row); random_length=False fixes it at size - 3."""
START_OBJ_POS = (1, MID - 1)
TOP_OBJ_POS = (HALLWAY_END + 1, MID - 2)
BOTTOM_OBJ_POS = (HALLWAY_END + 1, MID + 2)
TOP_TARGET = (TOP_OBJ_POS[0], TOP_OBJ_POS[1] + 1)
"""The cell below the top object: reaching it chooses the top object."""
BOTTOM_TARGET = (BOTTOM_OBJ_POS[0], BOTTOM_OBJ_POS[1] - 1)


def _walls(canvas_width: int, canvas_height: int) -> jax.Array:
    """The fixed walls of `_gen_grid` (the same for every episode when random_length=False)."""
    grid = canvas(canvas_width, canvas_height, SIZE, SIZE)
    grid = wall_rect(grid, 0, 0, SIZE, SIZE)
    # start room: its top and bottom walls over x = 1..4 and the cells of x = 4 beside the doorway row
    grid = horz_wall(grid, 1, UPPER_ROOM_WALL, 4)
    grid = horz_wall(grid, 1, LOWER_ROOM_WALL, 4)
    grid = put(grid, (4, UPPER_ROOM_WALL + 1), WALL_CELL)
    grid = put(grid, (4, LOWER_ROOM_WALL - 1), WALL_CELL)
    # horizontal hallway, x = 5 .. hallway_end - 1
    grid = horz_wall(grid, 5, UPPER_ROOM_WALL + 1, HALLWAY_END - 5)
    grid = horz_wall(grid, 5, LOWER_ROOM_WALL - 1, HALLWAY_END - 5)
    # vertical split: x = hallway_end walled except on the middle row, x = hallway_end + 2 walled fully
    grid = vert_wall(grid, HALLWAY_END, 0, MID)
    grid = vert_wall(grid, HALLWAY_END, MID + 1, SIZE - MID - 1)
    return vert_wall(grid, HALLWAY_END + 2, 0, SIZE)


def generate(key: jax.Array, canvas_width: int, canvas_height: int) -> Layout:
    """A fresh MemoryS11 episode: agent x, start object, then the end objects' order, as `_gen_grid`."""
    k_x, k_start, k_ends = jax.random.split(key, 3)
    grid = _walls(canvas_width, canvas_height)
    agent_pos = jnp.stack([rand_int(k_x, 1, HALLWAY_END + 1), jnp.int32(MID)])
    start_is_ball = rand_int(k_start, 0, 2) == 1  # _rand_elem([Key, Ball])
    top_is_ball = rand_int(k_ends, 0, 2) == 0  # _rand_elem([[Ball, Key], [Key, Ball]])[0] is Ball
    key_cell = jnp.array((KEY, GREEN, 0), jnp.int32)
    ball_cell = jnp.array((BALL, GREEN, 0), jnp.int32)
    grid = put(grid, START_OBJ_POS, jnp.where(start_is_ball, ball_cell, key_cell))
    grid = put(grid, TOP_OBJ_POS, jnp.where(top_is_ball, ball_cell, key_cell))
    grid = put(grid, BOTTOM_OBJ_POS, jnp.where(top_is_ball, key_cell, ball_cell))
    top, bottom = jnp.array(TOP_TARGET, jnp.int32), jnp.array(BOTTOM_TARGET, jnp.int32)
    top_matches = start_is_ball == top_is_ball
    return Layout(
        grid=grid,
        agent_pos=agent_pos,
        agent_dir=jnp.int32(0),
        success_pos=jnp.where(top_matches, top, bottom),
        failure_pos=jnp.where(top_matches, bottom, top),
    )


def from_farama(env, canvas_width: int, canvas_height: int) -> Layout:
    """A live (unwrapped, reset) Farama `MemoryEnv` as a `Layout`, for parity tests: its `grid.encode()`
    in the top-left of a wall canvas, the agent, and its `success_pos` / `failure_pos`."""
    return farama_layout(env, canvas_width, canvas_height, **rule_positions(env))


def rule_positions(env) -> dict[str, tuple[int, int]]:
    """`success_pos` / `failure_pos` of a Farama `MemoryEnv` (set by its `_gen_grid`)."""
    return {
        "success_pos": tuple(int(v) for v in env.success_pos),
        "failure_pos": tuple(int(v) for v in env.failure_pos),
    }


TASK = Task(
    env_id="MiniGrid-MemoryS11-v0",
    width=SIZE,
    height=SIZE,
    max_steps=5 * SIZE**2,  # MemoryEnv.__init__ default: 605
    generate=generate,
    see_through_walls=False,
    pickup_is_toggle=True,
)
