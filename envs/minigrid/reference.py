"""The `farama` MiniGrid backend: Farama minigrid's own envs, stepped on the host from inside jit.

It is the truth the JAX port is tested against, and what a policy trained on the port is scored on to
show that the port's numbers carry over. The host builds each env as the MOORE authors do
(`gymnasium.make(id)` wrapped in `ImgObsWrapper`, moore/environments/minigrid_env.py) and does only what
minigrid does: `reset(seed=...)` at `reset(key)` (seeds drawn from the key), `step(action)`, and a plain
`reset()` after every episode end, continuing the env's own random stream (gymnasium's vector-env
convention). One ordered `io_callback` per vector step carries the action batch and returns one packed
float32 array (every callback operand costs tens of microseconds).

Caveats, as for Meta-World's `official` backend: the JAX state is a handle on host envs, so only the latest
state may be stepped, and the env cannot be vmapped (ordered effects): one seed per process.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import io_callback

from mtrl.types import EnvSpec, GoalSchedule, TimeStep

from .engine import NUM_ACTIONS, VIEW
from .layout import Task
from .render import TILE_PIXELS

OBS_SIZE = VIEW * VIEW * 3
REPLY_SIZE = 2 * OBS_SIZE + 4  # final_obs, obs, reward, terminated, truncated, success


@struct.dataclass
class FaramaState:
    steps: jax.Array  # [envs] vector steps since reset(key): a check that only the latest state is stepped
    key: jax.Array


class HostMiniGrid:
    """The Farama env objects of one batched env, task-major; called through io_callback."""

    def __init__(self, tasks: tuple[Task, ...], envs_per_task: int):
        from minigrid.wrappers import ImgObsWrapper  # registers the MiniGrid ids with gymnasium

        self.envs = [ImgObsWrapper(gym.make(task.env_id)) for task in tasks for _ in range(envs_per_task)]
        self.steps = 0

    def reset(self, seeds: np.ndarray) -> np.ndarray:
        self.steps = 0
        return np.stack([_flat(env.reset(seed=int(s))[0]) for env, s in zip(self.envs, seeds, strict=True)])

    def step(self, actions: np.ndarray, steps: np.ndarray) -> np.ndarray:
        if int(steps[0]) != self.steps:
            raise RuntimeError(
                "the farama MiniGrid backend can only step its latest state (the envs live on the host)"
            )
        self.steps += 1
        reply = np.zeros((len(self.envs), REPLY_SIZE), np.float32)
        for i, (env, action) in enumerate(zip(self.envs, actions, strict=True)):
            obs, reward, terminated, truncated, _ = env.step(int(action))
            final = _flat(obs)
            if terminated or truncated:
                obs = env.reset()[0]
            reply[i, :OBS_SIZE] = final
            reply[i, OBS_SIZE : 2 * OBS_SIZE] = _flat(obs)
            reply[i, 2 * OBS_SIZE :] = (reward, terminated, truncated, reward > 0)
        return reply

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _flat(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float32).reshape(-1)


class FaramaMiniGrid:
    """Batched MiniGrid on Farama's envs; `reset`/`step` trace under jit and scan (not vmap)."""

    vmappable = False  # host envs behind io_callback
    steps_on_host = True  # Farama's envs (io_callback): programs stay on one device
    render_fps = 10  # minigrid's metadata: the pace videos play steps at
    schedule = GoalSchedule("random", 1)  # every reset draws a fresh layout

    def __init__(self, name: str, tasks: tuple[Task, ...], *, envs_per_task: int = 1, seed: int = 0):
        del seed  # layouts come from the reset key, as on the JAX backend
        if envs_per_task < 1:
            raise ValueError(f"envs_per_task must be >= 1, got {envs_per_task}")
        self.tasks = tuple(tasks)
        self.spec = EnvSpec(
            name=name,
            obs_size=OBS_SIZE,
            action_size=NUM_ACTIONS,
            task_names=tuple(task.env_id for task in self.tasks),
            envs_per_task=envs_per_task,
            episode_length=max(task.max_steps for task in self.tasks),
            goals_per_task=1,
            discrete_actions=True,
            procedural=True,
        )
        self.host = HostMiniGrid(self.tasks, envs_per_task)
        self.task_id = jnp.repeat(jnp.arange(len(self.tasks), dtype=jnp.int32), envs_per_task)
        # a Python loop over reset/step runs one compiled program per call; traced (jit, scan) they inline
        self.reset, self.step = jax.jit(self.reset), jax.jit(self.step)

    def reset(self, key: jax.Array) -> tuple[FaramaState, TimeStep]:
        n = self.spec.num_envs
        key, seed_key = jax.random.split(key)
        seeds = jax.random.randint(seed_key, (n,), 0, 2**31 - 1, dtype=jnp.int32)
        obs = io_callback(
            self.host.reset, jax.ShapeDtypeStruct((n, OBS_SIZE), jnp.float32), seeds, ordered=True
        )
        zeros = jnp.zeros(n, bool)
        step = TimeStep(obs, jnp.zeros(n, jnp.float32), zeros, zeros, zeros, self.task_id, obs, zeros)
        return FaramaState(jnp.zeros(n, jnp.int32), key), step

    def step(self, state: FaramaState, action: jax.Array) -> tuple[FaramaState, TimeStep]:
        n = self.spec.num_envs
        action = jnp.asarray(action).reshape(n).astype(jnp.int32)
        shape = jax.ShapeDtypeStruct((n, REPLY_SIZE), jnp.float32)
        reply = io_callback(self.host.step, shape, action, state.steps, ordered=True)
        final_obs, obs = reply[:, :OBS_SIZE], reply[:, OBS_SIZE : 2 * OBS_SIZE]
        reward = reply[:, 2 * OBS_SIZE]
        terminated, truncated, success = (reply[:, 2 * OBS_SIZE + k] > 0.5 for k in (1, 2, 3))
        step = TimeStep(
            obs, reward, terminated, truncated, success, self.task_id, final_obs, jnp.zeros(n, bool)
        )
        return FaramaState(state.steps + 1, state.key), step

    def host_state(self) -> None:
        """None: MiniGrid trains only with the episodic loop, which resets the envs at every iteration, so a
        checkpoint (always between iterations) needs none of the host envs' state."""
        return None

    def restore_host_state(self, state: FaramaState, saved: dict) -> None:
        del state, saved  # nothing to restore (`host_state` is None)

    def render(self, state: FaramaState, envs: Sequence[int], *, tile_size: int = TILE_PIXELS) -> list:
        """Farama's own `get_frame` of the envs `envs` (batch indices): the host holds the latest `state`."""
        del state
        return [self.host.envs[i].unwrapped.get_frame(highlight=False, tile_size=tile_size) for i in envs]

    def close(self) -> None:
        """Release the host envs; the env cannot be stepped afterwards."""
        self.host.close()
