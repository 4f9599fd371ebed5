"""MiniGrid-SimpleCrossingS9N2-v0: two walls ("rivers") across a 9×9 room, one opening in each on a path
to the goal.

Matches minigrid/envs/crossing.py `CrossingEnv._gen_grid` with size=9, num_crossings=2, obstacle_type=Wall.
The agent always starts at (1, 1) facing right and the goal sits at (size-2, size-2); only the walls are
random, drawn in three steps whose order fixes the distribution:

1. Rivers: the candidates are vertical walls at x = 2, 4, ..., size-3 and horizontal walls at the same y's;
   Farama shuffles the list and keeps the first `num_crossings` (a uniform subset). Each spans the interior.
2. Path: a uniformly shuffled sequence of moves, one "cross a vertical wall" (→) per vertical river and one
   "cross a horizontal wall" (↓) per horizontal river. The agent's room starts at the top-left one.
3. Openings, in path order: crossing a vertical wall opens the cell of that wall in a row drawn uniformly
   among the rows of the *current* room; crossing a horizontal wall opens a column drawn uniformly in the
   current room's columns. The room then advances by one.

So the layouts are far from uniform: e.g. with one river of each kind the two path orders are equally likely
even though they admit different numbers of openings, and an opening's range depends on which room the path
is in when that wall is crossed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..layout import EMPTY, GOAL_CELL, WALL_CELL, Layout, Task, canvas, put, rand_int, wall_rect

SIZE = 9
NUM_CROSSINGS = 2
RIVER_POSITIONS = tuple(range(2, SIZE - 2, 2))
"""Where a river may run (x of a vertical one, y of a horizontal one): `range(2, size - 2, 2)`."""


def generate(key: jax.Array, canvas_width: int, canvas_height: int) -> Layout:
    """A SimpleCrossingS9N2 layout with the distribution of `CrossingEnv._gen_grid` (see module docstring)."""
    n, m = NUM_CROSSINGS, len(RIVER_POSITIONS)
    k_rivers, k_path, *k_open = jax.random.split(key, 2 + n)
    grid = wall_rect(canvas(canvas_width, canvas_height, SIZE, SIZE), 0, 0, SIZE, SIZE)
    grid = put(grid, (SIZE - 2, SIZE - 2), GOAL_CELL)

    # 1. Candidates 0..m-1 are vertical rivers, m..2m-1 horizontal ones (Farama's list order); the first
    #    `n` of a uniform permutation are a uniform n-subset, as `shuffle(rivers)[:n]`.
    chosen = jax.random.permutation(k_rivers, 2 * m)[:n]
    pos = jnp.asarray(RIVER_POSITIONS, jnp.int32)[chosen % m]
    is_vert = chosen < m
    num_vert = is_vert.sum()
    # Room boundaries, as Farama's limits_v = [0] + sorted(rivers_v) + [size-1] (limits_h likewise). Padding
    # the unused slots with size-1 keeps the array static; only entries up to the real count are ever read.
    edge = jnp.int32(SIZE - 1)
    limits_v = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.sort(jnp.where(is_vert, pos, edge)), edge[None]])
    limits_h = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.sort(jnp.where(is_vert, edge, pos)), edge[None]])

    xs = jnp.arange(canvas_width)[:, None]
    ys = jnp.arange(canvas_height)[None, :]
    interior_x = (xs >= 1) & (xs <= SIZE - 2)
    interior_y = (ys >= 1) & (ys <= SIZE - 2)
    river = jnp.zeros((canvas_width, canvas_height), bool)
    for k in range(n):
        river |= jnp.where(is_vert[k], (xs == pos[k]) & interior_y, (ys == pos[k]) & interior_x)
    grid = jnp.where(river[..., None], jnp.asarray(WALL_CELL, jnp.int32), grid)

    # 2. A uniform arrangement of num_vert "→" moves and n-num_vert "↓" moves: Farama shuffles the list
    #    [h]*len(rivers_v) + [v]*len(rivers_h); ranking a uniform permutation gives the same law.
    crosses_vert = jax.random.permutation(k_path, n) < num_vert

    # 3. Openings along the path, one draw per move from the current room's span (`np_random.choice(range)`).
    room_i = room_j = jnp.int32(0)
    for k in range(n):
        row = rand_int(k_open[k], limits_h[room_j] + 1, limits_h[room_j + 1])
        col = rand_int(k_open[k], limits_v[room_i] + 1, limits_v[room_i + 1])
        opening = jnp.where(
            crosses_vert[k],
            jnp.stack([limits_v[room_i + 1], row]),
            jnp.stack([col, limits_h[room_j + 1]]),
        )
        grid = put(grid, opening, EMPTY)
        room_i = room_i + crosses_vert[k]
        room_j = room_j + ~crosses_vert[k]
    return Layout(grid=grid, agent_pos=jnp.array((1, 1), jnp.int32), agent_dir=jnp.int32(0))


def from_farama(env, canvas_width: int, canvas_height: int) -> Layout:
    """Read a reset Farama env (`gymnasium.make(...).unwrapped`) into a `Layout` for parity tests: its
    `grid.encode()` (None → (1, 0, 0)) in the top-left of a wall canvas, and the agent."""
    world = np.asarray(env.grid.encode(), np.int32)
    grid = canvas(canvas_width, canvas_height, env.width, env.height).at[: env.width, : env.height].set(world)
    return Layout(
        grid=grid,
        agent_pos=jnp.asarray(np.asarray(env.agent_pos), jnp.int32),
        agent_dir=jnp.int32(int(env.agent_dir)),
    )


TASK = Task(
    env_id="MiniGrid-SimpleCrossingS9N2-v0",
    width=SIZE,
    height=SIZE,
    max_steps=4 * SIZE**2,  # CrossingEnv default: 4 * size**2 = 324
    generate=generate,
    see_through_walls=False,
)
