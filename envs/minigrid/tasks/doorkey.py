"""MiniGrid-DoorKey-6x6-v0: a wall splits the room; the key is on the agent's side, the goal behind a
locked door.

Matches minigrid/envs/doorkey.py `DoorKeyEnv._gen_grid` (size 6), drawing in its order: the splitting
column uniform in [2, size-2) (a full-height wall); the agent uniform over the free cells left of it
(`place_agent(size=(split, height))`, rejection sampling = uniform over the free cells) and its direction
uniform in 0..3; the locked yellow door's row uniform in [1, height-2) — so never the bottom inner row,
a quirk of Farama's bound that is kept; then the yellow key uniform over the free cells left of the wall
other than the agent's (`place_obj` avoids the agent).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..layout import (
    DOOR,
    GOAL_CELL,
    KEY,
    LOCKED,
    WALL_CELL,
    YELLOW,
    Layout,
    Task,
    canvas,
    farama_layout,
    put,
    rand_int,
    sample_free_cell,
    wall_rect,
)

SIZE = 6
DOOR_CELL = (DOOR, YELLOW, LOCKED)
KEY_CELL = (KEY, YELLOW, 0)


def generate(key: jax.Array, canvas_width: int, canvas_height: int) -> Layout:
    """A DoorKey-6x6 layout; traceable under `jit`/`vmap`."""
    key_split, key_agent, key_dir, key_door, key_key = jax.random.split(key, 5)
    grid = canvas(canvas_width, canvas_height, SIZE, SIZE)
    grid = wall_rect(grid, 0, 0, SIZE, SIZE)
    grid = put(grid, (SIZE - 2, SIZE - 2), GOAL_CELL)
    split = rand_int(key_split, 2, SIZE - 2)
    xs = jnp.arange(canvas_width)[:, None]
    ys = jnp.arange(canvas_height)[None, :]
    grid = jnp.where(((xs == split) & (ys < SIZE))[..., None], jnp.array(WALL_CELL, jnp.int32), grid)
    left = (split, SIZE)  # place_* rectangle: top (0, 0), size (split, height)
    agent_pos = sample_free_cell(key_agent, grid, (0, 0), left)
    agent_dir = rand_int(key_dir, 0, 4)
    grid = put(grid, (split, rand_int(key_door, 1, SIZE - 2)), DOOR_CELL)
    grid = put(grid, sample_free_cell(key_key, grid, (0, 0), left, exclude=agent_pos), KEY_CELL)
    return Layout(grid=grid, agent_pos=agent_pos, agent_dir=agent_dir)


def from_farama(env, canvas_width: int, canvas_height: int) -> Layout:
    """The layout of a reset Farama env (`env.unwrapped`), for parity tests; no rule positions."""
    return farama_layout(env, canvas_width, canvas_height)


TASK = Task(
    env_id="MiniGrid-DoorKey-6x6-v0",
    width=SIZE,
    height=SIZE,
    max_steps=10 * SIZE**2,  # DoorKeyEnv's default: 360
    generate=generate,
    see_through_walls=False,
    pickup_is_toggle=False,
)
