"""Frames of MiniGrid worlds, drawn by Farama minigrid's own renderer.

The port's world is minigrid's `Grid.encode` array (`layout.py`), so `Grid.decode` gives back minigrid's
grid and `Grid.render` draws it exactly as a Farama env's `get_frame(highlight=False)` would: no second
drawing code to keep in step with the reference.
"""

from __future__ import annotations

import numpy as np

TILE_PIXELS = 32  # minigrid's default tile size


def world_frame(grid: np.ndarray, agent_pos: np.ndarray, agent_dir: int, tile_size: int = TILE_PIXELS):
    """uint8 `[height * tile, width * tile, 3]` of one world: `grid` is `[width, height, 3]` cell triples
    (the task's own size, without the canvas padding)."""
    from minigrid.core.grid import Grid

    world, _ = Grid.decode(np.asarray(grid, np.uint8))
    return world.render(tile_size, (int(agent_pos[0]), int(agent_pos[1])), int(agent_dir))
