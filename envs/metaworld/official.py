# ruff: noqa: F722  (jaxtyping shape strings are not forward references)
"""The `official` Meta-World backend: metaworld's own envs, stepped on the host from inside jit.

It is the reference truth that faster backends are checked against, so the host does only what
metaworld does: `env_cls(reward_function_version=...)`, `env.set_task(goal)`, `env.reset()`,
`env.step(action)`. One ordered `io_callback` per vector step carries the whole action batch plus
which envs must reset and with which goal; the host loops over its envs and returns stacked arrays.
The JAX side keeps only bookkeeping (step and episode counters, goal indices, the key): Meta-World
never terminates and truncates at exactly `spec.episode_length` steps (500, metaworld's own, unless
a shorter horizon is asked for), so which envs reset, and with which goal, is
known in JAX before the host call, and goal choices are a pure function of the reset key.

Caveats: the physics lives on the host, so the JAX state is a handle, not a value. Only the latest
state may be stepped (the host checks its step counters and raises otherwise) and the env cannot be
vmapped (ordered effects). Checkpoints store the host's state beside the JAX state (`host_state`,
`restore_host_state`), so a run resumes exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import io_callback
from jaxtyping import Array, Bool, Float, Int

from mtrl.types import EnvSpec, TimeStep

from . import render, snapshot
from .benchmarks import (
    ACTION_SIZE,
    EPISODE_LENGTH,
    OBS_SIZE,
    BenchmarkTasks,
    TaskBookkeeping,
    make_spec,
)


@struct.dataclass
class OfficialState:
    """Per-env bookkeeping of the host envs, plus the key for the next goal draws."""

    steps: Int[Array, " envs"]  # steps taken in the current episode (== env.curr_path_length)
    goal_index: Int[Array, " envs"]  # goal configuration of the current episode
    episodes: Int[Array, " envs"]  # index of the current episode since reset(key), from 0
    key: jax.Array


# One packed float32 array each way per vector step: every extra io_callback operand costs tens of
# microseconds (~70 us per input, ~20 us per output; jax 0.10.2 on a 2-core CPU). Integers below
# 2**24 (step counts, goal indices) and 0/1 flags are exact in float32.
REQUEST_SIZE = ACTION_SIZE + 3  # action, steps so far, done, goal index for the next episode
REPLY_SIZE = 2 * OBS_SIZE + 3  # final_obs, obs, reward, success, unstable
_FINAL_OBS = slice(0, OBS_SIZE)
_OBS = slice(OBS_SIZE, 2 * OBS_SIZE)
_REWARD = 2 * OBS_SIZE
_SUCCESS = 2 * OBS_SIZE + 1
_UNSTABLE = 2 * OBS_SIZE + 2


def pack_request(
    action: Float[Array, "envs act"],
    steps: Int[Array, " envs"],
    done: Bool[Array, " envs"],
    goal_index: Int[Array, " envs"],
) -> Float[Array, "envs request"]:
    """Pack one vector step's host request into a single float32 array [envs, REQUEST_SIZE]."""
    columns = [steps[:, None], done[:, None], goal_index[:, None]]
    return jnp.concatenate([action, *columns], axis=1, dtype=jnp.float32)


def unpack_reply(reply: Float[Array, "envs reply"]) -> tuple[Array, Array, Array, Array, Array]:
    """Split the host reply into (final_obs, obs, reward, success, unstable)."""
    success, unstable = reply[:, _SUCCESS] > 0.5, reply[:, _UNSTABLE] > 0.5
    return reply[:, _FINAL_OBS], reply[:, _OBS], reply[:, _REWARD], success, unstable


class HostEnvs:
    """The metaworld env objects of one batched env, task-major; called through io_callback."""

    def __init__(self, tasks: BenchmarkTasks, envs_per_task: int, seed: int, reward_version: str = "v2"):
        self.envs = []
        self.goals = []
        for env_cls, goals in zip(tasks.env_classes, tasks.goals, strict=True):
            for _ in range(envs_per_task):
                env = env_cls(reward_function_version=reward_version)
                env.seed(seed)  # as _init_each_env does; goals come from set_task, not this rng
                if env.max_path_length != EPISODE_LENGTH:
                    raise RuntimeError(f"{env_cls.__name__} truncates at {env.max_path_length}")
                self.envs.append(env)
                self.goals.append(goals)

    def reset(self, goal_index: np.ndarray) -> np.ndarray:
        """Set every env to its goal configuration and reset it; return the stacked first obs."""
        goal_index = np.asarray(goal_index)
        obs = np.empty((len(self.envs), OBS_SIZE), np.float32)
        for i in range(len(self.envs)):
            obs[i] = self._reset_one(i, goal_index[i])
        return obs

    def step(self, request: np.ndarray) -> np.ndarray:
        """Step every env once; reset the envs whose episode ends here (same-step auto-reset).

        `request` and the returned reply are packed as laid out in `pack_request` and
        `unpack_reply`. `final_obs` is what the step observed; `obs` is the same except where
        `done`, where it is the first obs of the next episode. A step during which MuJoCo found the
        simulation unstable and reset it is passed through as metaworld returns it, in that env's
        row only, and flagged `unstable`.
        """
        request = np.asarray(request)
        action = request[:, :ACTION_SIZE]
        steps, done, goal_index = request[:, ACTION_SIZE:].T.astype(np.int64)
        self._check_in_sync(steps)
        reply = np.empty((len(self.envs), REPLY_SIZE), np.float32)
        for i, env in enumerate(self.envs):
            resets = snapshot.unstable_resets(env.data)
            obs, reward, _, _, info = env.step(action[i])
            reply[i, _FINAL_OBS] = obs
            reply[i, _OBS] = obs
            reply[i, _REWARD] = reward
            reply[i, _SUCCESS] = bool(info["success"])
            reply[i, _UNSTABLE] = snapshot.unstable_resets(env.data) > resets
        for i in np.flatnonzero(done):
            reply[i, _OBS] = self._reset_one(i, goal_index[i])
        return reply

    def snapshot(self) -> dict:
        """Every env's state (see `snapshot.py`), keyed by env index."""
        return {f"env{i}": snapshot.snapshot(env) for i, env in enumerate(self.envs)}

    def restore(self, saved: dict, goal_index: np.ndarray) -> None:
        """Return every env to `saved`; each is first reset to the goal it was playing, which places
        the objects as that episode began and gives the env all its attributes."""
        self.reset(goal_index)
        for i, env in enumerate(self.envs):
            snapshot.restore(env, saved[f"env{i}"])

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def _reset_one(self, i: int, goal: int) -> np.ndarray:
        env = self.envs[i]
        env.set_task(self.goals[i][goal])
        obs, _ = env.reset()
        return obs

    def _check_in_sync(self, steps: np.ndarray) -> None:
        """Refuse a stale JAX state: the host envs hold physics for the latest state only."""
        host_steps = np.fromiter((env.curr_path_length for env in self.envs), np.int64, len(self.envs))
        if not np.array_equal(host_steps, steps):
            bad = int(np.flatnonzero(host_steps != steps)[0])
            raise RuntimeError(
                f"official Meta-World env out of sync: env {bad} is at step {host_steps[bad]} "
                f"but the state says {steps[bad]}; only the latest state can be stepped"
            )


class OfficialEnv:
    """Batched Meta-World on metaworld's own envs; `reset`/`step` trace under jit and scan."""

    vmappable = False  # the host steps the envs (io_callback)
    steps_on_host = True  # metaworld's envs (io_callback): programs stay on one device
    render_fps = 80  # env steps per second of simulated time (metaworld's metadata): videos play in real time

    def __init__(
        self,
        tasks: BenchmarkTasks,
        *,
        envs_per_task: int,
        goal_sampling: str,
        episodes_per_goal: int = 1,
        seed: int,
        reward_version: str = "v2",
        episode_length: int = EPISODE_LENGTH,
    ):
        self.spec: EnvSpec = make_spec(tasks, envs_per_task, episode_length)
        self.host = HostEnvs(tasks, envs_per_task, seed, reward_version)
        self.bookkeeping = TaskBookkeeping(tasks, self.spec, goal_sampling, episodes_per_goal)
        self.schedule = self.bookkeeping.schedule
        # a Python loop over reset/step runs one compiled program per call; traced (jit, scan) they inline
        self.reset, self.step = jax.jit(self.reset), jax.jit(self.step)
        self._frames: render.MujocoFrames | None = None  # made by the first `render`

    def reset(self, key: jax.Array) -> tuple[OfficialState, TimeStep]:
        n = self.spec.num_envs
        key, goal_key = jax.random.split(key)
        episodes = jnp.zeros(n, jnp.int32)
        goal_index = self.bookkeeping.next_goals(goal_key, episodes)
        obs_shape = jax.ShapeDtypeStruct((n, OBS_SIZE), jnp.float32)
        obs = self.bookkeeping.observe(io_callback(self.host.reset, obs_shape, goal_index, ordered=True))
        state = OfficialState(jnp.zeros(n, jnp.int32), goal_index, episodes, key)
        zeros = jnp.zeros(n, bool)
        task_id = jnp.asarray(self.bookkeeping.task_id)
        step = TimeStep(obs, jnp.zeros(n, jnp.float32), zeros, zeros, zeros, task_id, obs, zeros)
        return state, step

    def step(self, state: OfficialState, action: Float[Array, "envs act"]) -> tuple[OfficialState, TimeStep]:
        n = self.spec.num_envs
        steps = state.steps + 1
        truncated = steps >= self.spec.episode_length
        key, goal_key = jax.random.split(state.key)
        episodes = state.episodes + truncated
        goal_index = self.bookkeeping.goals_after_step(goal_key, episodes, truncated, state.goal_index)
        request = pack_request(action, state.steps, truncated, goal_index)
        reply_shape = jax.ShapeDtypeStruct((n, REPLY_SIZE), jnp.float32)
        reply = io_callback(self.host.step, reply_shape, request, ordered=True)
        final_obs, obs, reward, success, unstable = unpack_reply(reply)
        state = OfficialState(jnp.where(truncated, 0, steps), goal_index, episodes, key)
        terminated = jnp.zeros(n, bool)
        final_obs, obs = self.bookkeeping.observe(final_obs), self.bookkeeping.observe(obs)
        task_id = jnp.asarray(self.bookkeeping.task_id)
        step = TimeStep(obs, reward, terminated, truncated, success, task_id, final_obs, unstable)
        return state, step

    def host_state(self) -> dict:
        """The host envs' state, for a checkpoint: the JAX state alone cannot continue them."""
        return self.host.snapshot()

    def restore_host_state(self, state: OfficialState, saved: dict) -> None:
        """Put the host envs back where they were when `host_state` gave `saved` and `state` was current."""
        self.host.restore(saved, np.asarray(state.goal_index))

    render = render.render_host_envs  # the same for both backends: MuJoCo draws the host envs' MjData

    def close(self) -> None:
        """Release the host envs; the env cannot be stepped afterwards."""
        if self._frames is not None:
            self._frames.close()
        self.host.close()
