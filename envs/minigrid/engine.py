"""MiniGrid's dynamics and egocentric observation for one env, as pure JAX (vmap for a batch).

Each function restates a piece of Farama minigrid's `MiniGridEnv` (minigrid/minigrid_env.py) on the array
world of `layout.py`: `step_world` is `step` (plus the two task rules that MemoryEnv and RedBlueDoorEnv add
in their own `step`), `observe` is `gen_obs` (`get_view_exts`, `Grid.slice`, `rotate_left`,
`Grid.process_vis`, `Grid.encode`). The parity tests replay actions in both and compare every output.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from .layout import (
    BALL,
    BOX,
    DIR_TO_VEC,
    DOOR,
    EMPTY,
    EMPTY_ID,
    FLOOR,
    GOAL,
    KEY,
    LAVA,
    LOCKED,
    OPEN,
    WALL,
    WALL_CELL,
    Layout,
)

VIEW = 7
"""minigrid's default `agent_view_size`: the observation is a 7×7 crop, the agent at (3, 6) facing up."""
NUM_ACTIONS = 7
LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(NUM_ACTIONS)
NOTHING = (0, 0, 0)
"""`WorldState.carrying` when the agent holds nothing."""


@struct.dataclass
class WorldState:
    """One env's episode: the layout as it has changed, what the agent carries, and its step count."""

    layout: Layout
    carrying: jax.Array  # int32 [3]: the carried object's cell triple, or NOTHING
    step_count: jax.Array  # int32 []


@struct.dataclass
class Rules:
    """An env's task flags (see `layout.Task`), as arrays so one batch can mix tasks."""

    max_steps: jax.Array  # int32 []
    see_through_walls: jax.Array  # bool []
    pickup_is_toggle: jax.Array  # bool []


def start(layout: Layout) -> WorldState:
    """The state after `reset`: nothing carried, no steps taken."""
    return WorldState(layout, jnp.array(NOTHING, jnp.int32), jnp.zeros((), jnp.int32))


def _cell_at(grid: jax.Array, pos: jax.Array) -> jax.Array:
    """The cell at `pos`, or a wall outside the canvas (minigrid's `Grid.slice` fills those with walls)."""
    width, height = grid.shape[:2]
    inside = (pos[0] >= 0) & (pos[0] < width) & (pos[1] >= 0) & (pos[1] < height)
    value = grid[jnp.clip(pos[0], 0, width - 1), jnp.clip(pos[1], 0, height - 1)]
    return jnp.where(inside, value, jnp.array(WALL_CELL, jnp.int32))


def _can_overlap(cell: jax.Array) -> jax.Array:
    """minigrid `can_overlap`: empty, floor, goal, lava and open doors."""
    kind = cell[..., 0]
    open_door = (kind == DOOR) & (cell[..., 2] == OPEN)
    return (kind == EMPTY_ID) | (kind == FLOOR) | (kind == GOAL) | (kind == LAVA) | open_door


def _see_behind(cell: jax.Array) -> jax.Array:
    """minigrid `see_behind`: everything but walls and doors that are not open."""
    kind = cell[..., 0]
    return ~((kind == WALL) | ((kind == DOOR) & (cell[..., 2] != OPEN)))


def _door_open(grid: jax.Array, pos: jax.Array) -> jax.Array:
    """Whether the door at `pos` is open (False for the no-door position (-1, -1))."""
    cell = _cell_at(grid, pos)
    return (pos[0] >= 0) & (cell[0] == DOOR) & (cell[2] == OPEN)


def success_reward(step_count: jax.Array, max_steps: jax.Array) -> jax.Array:
    """minigrid `_reward`: 1 − 0.9 · step_count / max_steps, after the step is counted."""
    return 1.0 - 0.9 * (step_count.astype(jnp.float32) / max_steps.astype(jnp.float32))


def step_world(
    state: WorldState, action: jax.Array, rules: Rules
) -> tuple[WorldState, jax.Array, jax.Array, jax.Array, jax.Array]:
    """One `MiniGridEnv.step`; returns (state, reward, terminated, truncated, success).

    `success` marks the steps paid with `success_reward`: the goal reached, MemoryEnv's matching object,
    RedBlueDoorEnv's blue door opened after the red one.
    """
    layout, grid, carrying = state.layout, state.layout.grid, state.carrying
    step_count = state.step_count + 1
    action = jnp.where(rules.pickup_is_toggle & (action == PICKUP), TOGGLE, action)
    red_before = _door_open(grid, layout.red_door)
    blue_before = _door_open(grid, layout.blue_door)

    direction = layout.agent_dir
    front = layout.agent_pos + DIR_TO_VEC[direction]
    fx, fy = jnp.clip(front[0], 0, grid.shape[0] - 1), jnp.clip(front[1], 0, grid.shape[1] - 1)
    ahead = _cell_at(grid, front)
    kind = ahead[0]
    holding = carrying[0] != 0

    # turns
    direction = jnp.where(action == LEFT, (direction + 3) % 4, direction)
    direction = jnp.where(action == RIGHT, (direction + 1) % 4, direction)
    # forward
    moves = (action == FORWARD) & _can_overlap(ahead)
    agent_pos = jnp.where(moves, front, layout.agent_pos)
    reached_goal = (action == FORWARD) & (kind == GOAL)
    into_lava = (action == FORWARD) & (kind == LAVA)
    # pickup: keys, balls and boxes, into an empty hand
    picks = (action == PICKUP) & ((kind == KEY) | (kind == BALL) | (kind == BOX)) & ~holding
    # drop: onto an empty cell
    drops = (action == DROP) & (kind == EMPTY_ID) & holding
    # toggle: a locked door opens with the key of its colour, an unlocked one flips open/closed
    # (boxes, which would release their contents, appear in none of the ported tasks)
    is_door = (action == TOGGLE) & (kind == DOOR)
    has_key = (carrying[0] == KEY) & (carrying[1] == ahead[1])
    unlocks = is_door & (ahead[2] == LOCKED) & has_key
    flips = is_door & (ahead[2] != LOCKED)
    door_state = jnp.where(unlocks, OPEN, jnp.where(flips, jnp.where(ahead[2] == OPEN, 1, OPEN), ahead[2]))

    new_front = jnp.where(picks, jnp.array(EMPTY, jnp.int32), ahead)
    new_front = jnp.where(drops, carrying, new_front)
    new_front = new_front.at[2].set(jnp.where(is_door, door_state, new_front[2]))
    changes = picks | drops | is_door
    grid = grid.at[fx, fy].set(jnp.where(changes, new_front, grid[fx, fy]))
    carrying = jnp.where(picks, ahead, jnp.where(drops, jnp.array(NOTHING, jnp.int32), carrying))

    reward_now = success_reward(step_count, rules.max_steps)
    success = reached_goal
    terminated = reached_goal | into_lava

    # MemoryEnv: stepping next to the matching object succeeds, next to the other one fails
    at_success = jnp.all(agent_pos == layout.success_pos)
    at_failure = jnp.all(agent_pos == layout.failure_pos)
    success = (success | at_success) & ~at_failure
    terminated = terminated | at_success | at_failure

    # RedBlueDoorEnv: blue opened with red already open succeeds; any other opening order fails
    red_after, blue_after = _door_open(grid, layout.red_door), _door_open(grid, layout.blue_door)
    blue_rule = blue_after
    red_rule = ~blue_after & red_after & blue_before
    success = jnp.where(blue_rule, red_before, jnp.where(red_rule, False, success))
    terminated = terminated | blue_rule | red_rule

    reward = jnp.where(success, reward_now, 0.0)
    truncated = step_count >= rules.max_steps
    layout = layout.replace(grid=grid, agent_pos=agent_pos, agent_dir=direction)
    return WorldState(layout, carrying, step_count), reward, terminated, truncated, success


def _visible(see: list[list[jax.Array]]) -> list[list[jax.Array]]:
    """minigrid `Grid.process_vis` on the 7×7 view (`see[i][j]`: cell (i, j) lets sight through): from
    the agent's row upwards, light spreads sideways along a row and diagonally/straight up to the next."""
    false = jnp.zeros_like(see[0][0])
    mask = [[false for _ in range(VIEW)] for _ in range(VIEW)]
    mask[VIEW // 2][VIEW - 1] = ~false
    for j in reversed(range(VIEW)):
        for i in range(VIEW - 1):
            spreads = mask[i][j] & see[i][j]
            mask[i + 1][j] = mask[i + 1][j] | spreads
            if j > 0:
                mask[i + 1][j - 1] = mask[i + 1][j - 1] | spreads
                mask[i][j - 1] = mask[i][j - 1] | spreads
        for i in reversed(range(1, VIEW)):
            spreads = mask[i][j] & see[i][j]
            mask[i - 1][j] = mask[i - 1][j] | spreads
            if j > 0:
                mask[i - 1][j - 1] = mask[i - 1][j - 1] | spreads
                mask[i][j - 1] = mask[i][j - 1] | spreads
    return mask


def observe(state: WorldState, rules: Rules) -> jax.Array:
    """minigrid `gen_obs()["image"]`: the `[7, 7, 3]` view indexed [x, y], the agent at (3, 6) looking
    towards y = 0; cells hidden behind walls and closed doors are (0, 0, 0) unless `see_through_walls`; the
    agent's own cell shows what it carries (or empty)."""
    layout = state.layout
    forward = DIR_TO_VEC[layout.agent_dir]
    right = jnp.stack([-forward[1], forward[0]])
    offsets = jnp.arange(VIEW)
    ahead = (VIEW - 1 - offsets)[None, :, None] * forward  # [1, view_y, 2]
    across = (offsets - VIEW // 2)[:, None, None] * right  # [view_x, 1, 2]
    positions = layout.agent_pos + ahead + across  # [view_x, view_y, 2]
    cells = jax.vmap(jax.vmap(_cell_at, in_axes=(None, 0)), in_axes=(None, 0))(layout.grid, positions)

    see = _see_behind(cells)
    mask = _visible([[see[i, j] for j in range(VIEW)] for i in range(VIEW)])
    mask = jnp.stack([jnp.stack(column) for column in mask]) | rules.see_through_walls
    held = jnp.where(state.carrying[0] != 0, state.carrying, jnp.array(EMPTY, jnp.int32))
    cells = cells.at[VIEW // 2, VIEW - 1].set(held)
    return jnp.where(mask[..., None], cells, 0)
