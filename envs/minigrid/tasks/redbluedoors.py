"""MiniGrid-RedBlueDoors-6x6-v0: a closed room with a red door in its left wall and a blue one in its right.

Matches minigrid/envs/redbluedoors.py `RedBlueDoorEnv._gen_grid` with size 6 (a 12 × 6 world): the outer
wall, a 6 × 6 room walled at x = 3..8, the agent uniform on the room's 16 inner cells with a uniform
direction (`place_agent`), then the red door at (3, y) and the blue door at (8, y'), y and y' independent and
uniform in 1..4 (`_rand_int(1, size - 1)`), both closed and unlocked (`Door(colour)`). The doors sit on the
room's walls, so they never meet the agent, which is drawn first. The episode rule (opening blue after red
succeeds, before it fails) is the step's, from `Layout.red_door` / `Layout.blue_door`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..layout import (
    BLUE,
    CLOSED,
    DOOR,
    RED,
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
WIDTH, HEIGHT = 2 * SIZE, SIZE
ROOM_LEFT = SIZE // 2
"""x of the room's left wall (the red door's column); the right wall is at ROOM_LEFT + SIZE - 1."""
ROOM_RIGHT = ROOM_LEFT + SIZE - 1


def generate(key: jax.Array, canvas_width: int, canvas_height: int) -> Layout:
    """A fresh RedBlueDoors-6x6 episode, drawn in `_gen_grid`'s order (agent, direction, red, blue)."""
    k_pos, k_dir, k_red, k_blue = jax.random.split(key, 4)
    grid = canvas(canvas_width, canvas_height, WIDTH, HEIGHT)
    grid = wall_rect(grid, 0, 0, WIDTH, HEIGHT)
    grid = wall_rect(grid, ROOM_LEFT, 0, SIZE, SIZE)
    # place_agent(top=(size // 2, 0), size=(size, size)): the walls leave only the room's inside free.
    agent_pos = sample_free_cell(k_pos, grid, top=(ROOM_LEFT, 0), size=(SIZE, SIZE))
    agent_dir = rand_int(k_dir, 0, 4)
    red_door = jnp.stack([jnp.int32(ROOM_LEFT), rand_int(k_red, 1, SIZE - 1)])
    blue_door = jnp.stack([jnp.int32(ROOM_RIGHT), rand_int(k_blue, 1, SIZE - 1)])
    grid = put(grid, red_door, (DOOR, RED, CLOSED))
    grid = put(grid, blue_door, (DOOR, BLUE, CLOSED))
    return Layout(grid=grid, agent_pos=agent_pos, agent_dir=agent_dir, red_door=red_door, blue_door=blue_door)


def from_farama(env, canvas_width: int, canvas_height: int) -> Layout:
    """A live (unwrapped, reset) Farama `RedBlueDoorEnv` as a `Layout`, for parity tests: its
    `grid.encode()` in the top-left of a wall canvas, the agent, and the two doors' positions."""
    return farama_layout(env, canvas_width, canvas_height, **rule_positions(env))


def rule_positions(env) -> dict[str, tuple[int, int]]:
    """`red_door` / `blue_door` of a Farama `RedBlueDoorEnv`. `_gen_grid` puts the doors with `Grid.set`,
    which leaves their `cur_pos` unset, so the grid is searched for the very objects."""
    cells = [(x, y, env.grid.get(x, y)) for x in range(env.width) for y in range(env.height)]
    found = {}
    for name in ("red_door", "blue_door"):
        at = [(x, y) for x, y, obj in cells if obj is getattr(env, name)]
        if len(at) != 1:
            raise ValueError(f"expected {name} once in the grid, found it at {at}")
        found[name] = at[0]
    return found


TASK = Task(
    env_id="MiniGrid-RedBlueDoors-6x6-v0",
    width=WIDTH,
    height=HEIGHT,
    max_steps=20 * SIZE**2,  # RedBlueDoorEnv.__init__ default: 720
    generate=generate,
    see_through_walls=False,
    pickup_is_toggle=False,
)
