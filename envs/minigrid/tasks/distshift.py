"""MiniGrid-DistShift1-v0: two lava strips along the top rows between the agent and the goal.

Matches minigrid/envs/distshift.py `DistShiftEnv._gen_grid` with the registered `strip2_row=2` and the
defaults width 9, height 7, agent at (1, 1) facing right: nothing is random, so every key gives the same
layout. The env sets `see_through_walls=True` (no occlusion in the agent's view), carried by `TASK`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..layout import GOAL_CELL, LAVA_CELL, Layout, Task, canvas, farama_layout, put, wall_rect

WIDTH, HEIGHT = 9, 7
STRIP2_ROW = 2


def generate(key: jax.Array, canvas_width: int, canvas_height: int) -> Layout:
    """The (fixed) DistShift1 layout; `key` is unused but kept for the common generator signature."""
    del key
    grid = canvas(canvas_width, canvas_height, WIDTH, HEIGHT)
    grid = wall_rect(grid, 0, 0, WIDTH, HEIGHT)
    grid = put(grid, (WIDTH - 2, 1), GOAL_CELL)
    # `width - 6` lava cells from x = 3, in row 1 and in row strip2_row.
    lava = jnp.array(LAVA_CELL, jnp.int32)
    grid = grid.at[3 : WIDTH - 3, 1].set(lava)
    grid = grid.at[3 : WIDTH - 3, STRIP2_ROW].set(lava)
    return Layout(grid=grid, agent_pos=jnp.array((1, 1), jnp.int32), agent_dir=jnp.array(0, jnp.int32))


def from_farama(env, canvas_width: int, canvas_height: int) -> Layout:
    """The layout of a reset Farama env (`env.unwrapped`), for parity tests; no rule positions."""
    return farama_layout(env, canvas_width, canvas_height)


TASK = Task(
    env_id="MiniGrid-DistShift1-v0",
    width=WIDTH,
    height=HEIGHT,
    max_steps=4 * WIDTH * HEIGHT,  # DistShiftEnv's default: 252
    generate=generate,
    see_through_walls=True,
    pickup_is_toggle=False,
)
