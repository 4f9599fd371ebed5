"""MiniGrid-LavaGapS7-v0: a vertical lava strip with one gap between the agent and the goal.

Matches minigrid/envs/lavagap.py `LavaGapEnv._gen_grid` (size 7, obstacle `Lava`): walls round the border,
the agent fixed at (1, 1) facing right, the goal fixed at (size-2, size-2), and the only randomness the gap:
its column uniform in [2, size-2) (the whole column is lava from row 1 to size-2) and its row uniform in
[1, size-1), drawn independently.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..layout import (
    EMPTY,
    GOAL_CELL,
    LAVA_CELL,
    Layout,
    Task,
    canvas,
    farama_layout,
    put,
    rand_int,
    wall_rect,
)

SIZE = 7


def generate(key: jax.Array, canvas_width: int, canvas_height: int) -> Layout:
    """A LavaGapS7 layout; traceable under `jit`/`vmap`."""
    key_x, key_y = jax.random.split(key)
    grid = canvas(canvas_width, canvas_height, SIZE, SIZE)
    grid = wall_rect(grid, 0, 0, SIZE, SIZE)
    grid = put(grid, (SIZE - 2, SIZE - 2), GOAL_CELL)
    # _rand_int(2, width - 2) then _rand_int(1, height - 1), in this order (independent draws).
    gap = jnp.stack([rand_int(key_x, 2, SIZE - 2), rand_int(key_y, 1, SIZE - 1)])
    xs = jnp.arange(canvas_width)[:, None]
    ys = jnp.arange(canvas_height)[None, :]
    strip = (xs == gap[0]) & (ys >= 1) & (ys <= SIZE - 2)
    grid = jnp.where(strip[..., None], jnp.array(LAVA_CELL, jnp.int32), grid)
    grid = put(grid, gap, EMPTY)
    return Layout(grid=grid, agent_pos=jnp.array((1, 1), jnp.int32), agent_dir=jnp.array(0, jnp.int32))


def from_farama(env, canvas_width: int, canvas_height: int) -> Layout:
    """The layout of a reset Farama env (`env.unwrapped`), for parity tests; LavaGap has no rule positions."""
    return farama_layout(env, canvas_width, canvas_height)


TASK = Task(
    env_id="MiniGrid-LavaGapS7-v0",
    width=SIZE,
    height=SIZE,
    max_steps=4 * SIZE**2,  # LavaGapEnv's default: 196
    generate=generate,
    see_through_walls=False,
    pickup_is_toggle=False,
)
