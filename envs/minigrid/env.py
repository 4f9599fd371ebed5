"""The batched MiniGrid env in pure JAX: tasks side by side, same-step auto-reset, jit/scan/vmap-able.

Envs are task-major (env `i` runs task `i // envs_per_task`). Every task's world is drawn on one canvas
(the largest task's size, walls elsewhere), so one array holds the batch and one `step_world` steps it.
Observations are minigrid's 7×7×3 egocentric image (the `ImgObsWrapper` view the MOORE authors train on),
flattened in [x, y, channel] order to `obs_size` 147 floats. Actions are the 7 discrete minigrid actions,
given as integers `[envs]`. There is no one-hot task id in the observation: agents route on `task_id`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import struct

from mtrl.types import EnvSpec, GoalSchedule, TimeStep

from . import engine
from .engine import NUM_ACTIONS, VIEW, Rules, WorldState
from .layout import Task
from .render import TILE_PIXELS, world_frame


@struct.dataclass
class MiniGridState:
    world: WorldState  # batched: every leaf has a leading [envs] axis
    key: jax.Array


class MiniGrid:
    """Batched MiniGrid tasks (see module docstring); `reset`/`step` are pure and jittable."""

    vmappable = True  # pure JAX: whole training runs can be vmapped over seeds
    steps_on_host = False  # pure JAX
    render_fps = 10  # minigrid's metadata: the pace videos play steps at
    schedule = GoalSchedule("random", 1)  # every reset draws a fresh layout

    def __init__(self, name: str, tasks: tuple[Task, ...], *, envs_per_task: int = 1):
        if envs_per_task < 1:
            raise ValueError(f"envs_per_task must be >= 1, got {envs_per_task}")
        self.tasks = tuple(tasks)
        self.width = max(task.width for task in self.tasks)
        self.height = max(task.height for task in self.tasks)
        self.spec = EnvSpec(
            name=name,
            obs_size=VIEW * VIEW * 3,
            action_size=NUM_ACTIONS,
            task_names=tuple(task.env_id for task in self.tasks),
            envs_per_task=envs_per_task,
            episode_length=max(task.max_steps for task in self.tasks),
            goals_per_task=1,
            discrete_actions=True,
            procedural=True,
        )
        per_env = lambda values, dtype: jnp.repeat(jnp.asarray(values, dtype), envs_per_task)  # noqa: E731
        self.rules = Rules(
            max_steps=per_env([t.max_steps for t in self.tasks], jnp.int32),
            see_through_walls=per_env([t.see_through_walls for t in self.tasks], bool),
            pickup_is_toggle=per_env([t.pickup_is_toggle for t in self.tasks], bool),
        )
        self.task_id = per_env(range(len(self.tasks)), jnp.int32)
        # a Python loop over reset/step runs one compiled program per call; traced (jit, scan) they inline
        self.reset, self.step = jax.jit(self.reset), jax.jit(self.step)

    def host_state(self) -> None:
        """Nothing lives outside the JAX state: a checkpoint of it resumes the env exactly."""
        return None

    def restore_host_state(self, state, saved: dict) -> None:
        del state, saved  # nothing to restore (`host_state` is None)

    def close(self) -> None:
        """Nothing to release: the env is pure JAX."""

    def generate(self, key: jax.Array) -> WorldState:
        """Fresh episodes for every env: each task's generator, vmapped over that task's envs."""
        keys = jax.random.split(key, (len(self.tasks), self.spec.envs_per_task))
        layouts = [
            jax.vmap(lambda k, t=task: t.generate(k, self.width, self.height))(task_keys)
            for task, task_keys in zip(self.tasks, keys, strict=True)
        ]
        layout = jax.tree.map(lambda *xs: jnp.concatenate(xs), *layouts)
        return jax.vmap(engine.start)(layout)

    def reset(self, key: jax.Array) -> tuple[MiniGridState, TimeStep]:
        key, layout_key = jax.random.split(key)
        world = self.generate(layout_key)
        obs = self._observe(world)
        zeros = jnp.zeros(self.spec.num_envs, bool)
        step = TimeStep(obs, jnp.zeros(self.spec.num_envs), zeros, zeros, zeros, self.task_id, obs, zeros)
        return MiniGridState(world, key), step

    def step(self, state: MiniGridState, action: jax.Array) -> tuple[MiniGridState, TimeStep]:
        action = jnp.asarray(action).reshape(self.spec.num_envs).astype(jnp.int32)
        world, reward, terminated, truncated, success = jax.vmap(engine.step_world)(
            state.world, action, self.rules
        )
        final_obs = self._observe(world)
        done = terminated | truncated
        key, layout_key = jax.random.split(state.key)
        world = jax.lax.cond(
            jnp.any(done),
            lambda: jax.tree.map(
                lambda new, old: _where_rows(done, new, old), self.generate(layout_key), world
            ),
            lambda: world,
        )
        obs = jnp.where(done[:, None], self._observe(world), final_obs)
        step = TimeStep(
            obs, reward, terminated, truncated, success, self.task_id, final_obs, jnp.zeros_like(done)
        )
        return MiniGridState(world, key), step

    def render(self, state: MiniGridState, envs: Sequence[int], *, tile_size: int = TILE_PIXELS) -> list:
        """uint8 `[height * tile, width * tile, 3]` images of the envs `envs` (batch indices) in `state`, each
        at its task's own size, as minigrid draws them."""
        layout = jax.device_get(state.world.layout)
        frames = []
        for i in envs:
            task = self.tasks[int(self.task_id[i])]
            grid = layout.grid[i, : task.width, : task.height]
            frames.append(world_frame(grid, layout.agent_pos[i], layout.agent_dir[i], tile_size))
        return frames

    def _observe(self, world: WorldState) -> jax.Array:
        image = jax.vmap(engine.observe)(world, self.rules)
        return image.reshape(self.spec.num_envs, -1).astype(jnp.float32)


def _where_rows(rows: jax.Array, new: jax.Array, old: jax.Array) -> jax.Array:
    return jnp.where(rows.reshape(rows.shape + (1,) * (new.ndim - 1)), new, old)
