# ruff: noqa: F722  (jaxtyping shape strings are not forward references)
"""The `native` Meta-World backend: host physics in one call per vector step, the rest in JAX.

Per vector step the host (`host.NativeHost`) moves the mocap, steps MuJoCo and returns raw arrays;
this module turns them into metaworld's 39-dim observation (current frame, previous frame, goal,
clipped to the observation space), reward (v2) and success, for each task's envs with that task's
`TaskPort`, all inside the jitted rollout. The JAX state carries what metaworld keeps on the env
object between steps: the previous frame and the episode's constants (target, initial positions).

Like `official`, the physics lives on the host: only the latest state may be stepped, and its physics
is not part of the JAX state (checkpoints store it beside). Unlike `official`, it can train several seeds
in one program: built with `seeds=N` the host holds N copies of the batch, and under `jax.vmap` over N
seeds one host call steps every copy (a `custom_vmap` rule hands the callback the whole seed axis).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import custom_batching
from jax.experimental import io_callback
from jaxtyping import Array, Float, Int

from mtrl.types import EnvSpec, TimeStep

from .. import render
from ..benchmarks import EPISODE_LENGTH, OBS_SIZE, BenchmarkTasks, TaskBookkeeping, make_spec
from .host import NativeHost
from .layout import TaskLayout
from .port import Frame, TaskPort
from .rewards import norm
from .tasks import get_port

FRAME_SIZE = 18  # hand 3, gripper 1, objects 14: one frame of the observation
OBJECTS_SIZE = 14


@struct.dataclass
class NativeState:
    """Host bookkeeping (as `OfficialState`) plus what metaworld keeps on each env between steps."""

    steps: Int[Array, " envs"]
    goal_index: Int[Array, " envs"]
    episodes: Int[Array, " envs"]
    key: jax.Array
    prev_frame: Float[Array, "envs 18"]  # the previous step's unclipped current frame (`_prev_obs`)
    consts: Float[Array, "envs consts"]  # this episode's constants, laid out per task


def gripper_opening(frame: Frame) -> Float[Array, " envs"]:
    """The observation's gripper column: claw distance over 0.1, clipped to [0, 1]."""
    return jnp.clip(norm(frame.right_claw - frame.left_claw) / 0.1, 0.0, 1.0)


def object_columns(port: TaskPort, frame: Frame) -> Float[Array, "envs 14"]:
    """Objects' (pos, quat) pairs padded to 14, as `_get_curr_obs_combined_no_goal` lays them out."""
    pos, quat = port.objects(frame)
    pieces = []
    for k in range(min(pos.shape[1] // 3, quat.shape[1] // 4)):  # zip() in metaworld
        pieces += [pos[:, 3 * k : 3 * k + 3], quat[:, 4 * k : 4 * k + 4]]
    objects = jnp.concatenate(pieces, axis=1) if pieces else jnp.zeros((pos.shape[0], 0))
    return jnp.pad(objects, ((0, 0), (0, OBJECTS_SIZE - objects.shape[1])))


def _unpack(block: Array, columns: dict[str, tuple[int, int]]) -> Frame:
    return Frame({name: block[:, start:stop] for name, (start, stop) in columns.items()})


def host_call(fn: Callable, reply: jax.ShapeDtypeStruct, copies: int) -> Callable[[Array, Array], Array]:
    """`call(request, seed_key)`: `fn(request)` on the host, in program order (an ordered io_callback).

    With `copies` > 1 the host holds one batch per seed, so the call is meant for `jax.vmap` over exactly
    `copies` seeds: the vmap rule calls `fn` once with the whole seed axis (an ordered io_callback cannot
    itself be vmapped). `seed_key`, the calling seed's key data, is what makes every such call batched, so
    that it goes through the rule even when all seeds send the same request (an evaluation's first reset:
    its goal order is fixed). Called without that vmap, the host refuses at run time.
    """
    if copies == 1:
        return lambda request, seed_key: io_callback(fn, reply, request, ordered=True)

    def unbatched(request, seed_key):
        raise RuntimeError(
            f"this native env holds {copies} copies of its batch, one per seed: call it under jax.vmap over "
            f"{copies} seeds (or build it with seeds=1)"
        )

    @custom_batching.custom_vmap
    def call(request, seed_key):
        return io_callback(unbatched, reply, request, seed_key, ordered=True)

    @call.def_vmap
    def over_seeds(axis_size: int, in_batched: list[bool], request, seed_key):
        if axis_size != copies:
            raise ValueError(f"this native env was built for {copies} vmapped seeds, not {axis_size}")
        if not in_batched[0]:
            request = jnp.broadcast_to(request, (copies, *request.shape))
        batched = jax.ShapeDtypeStruct((copies, *reply.shape), reply.dtype)
        return io_callback(fn, batched, request, ordered=True), True

    return call


class NativeEnv:
    """Batched Meta-World with host physics and JAX observations/rewards; traceable by jit and scan."""

    steps_on_host = True  # the physics (io_callback): programs stay on one device
    render_fps = 80  # env steps per second of simulated time (metaworld's metadata): videos play in real time

    def __init__(
        self,
        tasks: BenchmarkTasks,
        *,
        envs_per_task: int,
        goal_sampling: str,
        episodes_per_goal: int = 1,
        seed: int,
        threads: int | None = None,
        episode_length: int = EPISODE_LENGTH,
        seeds: int = 1,
    ):
        self.ports = tuple(get_port(name) for name in tasks.task_names)
        self.spec: EnvSpec = make_spec(tasks, envs_per_task, episode_length)
        self.host = NativeHost(tasks, self.ports, envs_per_task, seed, threads, copies=seeds)
        self.layout = self.host.layout
        self.seeds = seeds
        self.vmappable = seeds > 1  # over exactly `seeds` seeds: the host holds one batch per seed
        reply = jax.ShapeDtypeStruct((self.spec.num_envs, self.layout.width), jnp.float32)
        self._host_reset = host_call(self.host.reset, reply, seeds)
        self._host_step = host_call(self.host.step, reply, seeds)
        self.goal_visible = tasks.one_hot  # MT: goal in obs and one-hot appended; ML: goal zeroed
        self.bookkeeping = TaskBookkeeping(tasks, self.spec, goal_sampling, episodes_per_goal)
        self.schedule = self.bookkeeping.schedule
        # a Python loop over reset/step runs one compiled program per call; traced (jit, scan) they inline
        self.reset, self.step = jax.jit(self.reset), jax.jit(self.step)
        self._frames: render.MujocoFrames | None = None  # made by the first `render`

    def reset(self, key: jax.Array) -> tuple[NativeState, TimeStep]:
        n = self.spec.num_envs
        key, goal_key = jax.random.split(key)
        episodes = jnp.zeros(n, jnp.int32)
        goal_index = self.bookkeeping.next_goals(goal_key, episodes)
        reply = self._host_reset(goal_index, jax.random.key_data(key))
        obs, consts = self._reset_part(reply)
        state = NativeState(jnp.zeros(n, jnp.int32), goal_index, episodes, key, obs[:, :FRAME_SIZE], consts)
        zeros = jnp.zeros(n, bool)
        obs = self.bookkeeping.observe(obs)
        task_id = jnp.asarray(self.bookkeeping.task_id)
        step = TimeStep(obs, jnp.zeros(n, jnp.float32), zeros, zeros, zeros, task_id, obs, zeros)
        return state, step

    def step(self, state: NativeState, action: Float[Array, "envs act"]) -> tuple[NativeState, TimeStep]:
        n = self.spec.num_envs
        action = action.astype(jnp.float32)
        steps = state.steps + 1
        truncated = steps >= self.spec.episode_length
        key, goal_key = jax.random.split(state.key)
        episodes = state.episodes + truncated
        goal_index = self.bookkeeping.goals_after_step(goal_key, episodes, truncated, state.goal_index)
        columns = [state.steps[:, None], truncated[:, None], goal_index[:, None]]
        request = jnp.concatenate([action, *columns], axis=1, dtype=jnp.float32)
        reply = self._host_step(request, jax.random.key_data(state.key))
        frame, final_obs, reward, success, consts = self._evaluate(state, reply, action)
        reset_obs, reset_consts = self._reset_part(reply)
        done = truncated[:, None]
        obs = jnp.where(done, reset_obs, final_obs)
        state = NativeState(
            steps=jnp.where(truncated, 0, steps),
            goal_index=goal_index,
            episodes=episodes,
            key=key,
            prev_frame=jnp.where(done, reset_obs[:, :FRAME_SIZE], frame),
            consts=jnp.where(done, reset_consts, consts),
        )
        terminated = jnp.zeros(n, bool)
        unstable = reply[:, self.layout.unstable_column] > 0.5
        step = TimeStep(
            self.bookkeeping.observe(obs), reward, terminated, truncated, success,
            jnp.asarray(self.bookkeeping.task_id), self.bookkeeping.observe(final_obs), unstable,
        )  # fmt: skip
        return state, step

    def host_state(self) -> dict:
        """The host's state, for a checkpoint: the JAX state alone cannot continue the physics."""
        return self.host.snapshot()

    def restore_host_state(self, state: NativeState, saved: dict) -> None:
        """Put the host back where it was when `host_state` gave `saved` and `state` was current."""
        self.host.restore(saved, np.asarray(state.goal_index))

    render = render.render_host_envs  # the same for both backends: MuJoCo draws the host envs' MjData

    def close(self) -> None:
        """Release the host envs and threads; the env cannot be stepped afterwards."""
        if self._frames is not None:
            self._frames.close()
        self.host.close()

    def _evaluate(self, state: NativeState, reply: Array, action: Array):
        """Observation, reward and success of every env.

        The observation is built for the whole batch at once (common reads and constants sit in the
        same columns for every task); only the objects' columns, latched constants and the reward are
        per task (tasks own contiguous rows). Fewer, wider XLA kernels: at one env per task their
        count, not their width, sets the cost.
        """
        common = _unpack(reply, self.layout.common_reads)
        per_task = self.spec.envs_per_task
        frames = []
        for task, layout in enumerate(self.layout.tasks):
            rows = slice(task * per_task, (task + 1) * per_task)
            frames.append(self._task_inputs(reply[rows], state.consts[rows], layout))
        objects = [object_columns(port, frame) for port, (frame, _) in zip(self.ports, frames, strict=True)]
        objects = jnp.concatenate(objects)
        current = jnp.concatenate([common.hand, gripper_opening(common)[:, None], objects], axis=1)
        target = _unpack(state.consts, self.layout.common_constants).target_pos
        goal = target if self.goal_visible else jnp.zeros_like(target)
        obs = jnp.concatenate([current, state.prev_frame, goal], axis=1)
        obs = jnp.clip(obs, self.host.obs_low, self.host.obs_high)
        rewards, successes, const_blocks = [], [], []
        for task, (port, layout, (frame, consts)) in enumerate(
            zip(self.ports, self.layout.tasks, frames, strict=True)
        ):
            rows = slice(task * per_task, (task + 1) * per_task)
            block = state.consts[rows]
            if port.latch is not None:
                first_step = (state.steps[rows] == 0)[:, None]
                for name, value in port.latch(frame, consts, obs[rows], action[rows]).items():
                    consts[name] = jnp.where(first_step, value, consts[name])
                    start, stop = layout.constants[name]
                    block = block.at[:, start:stop].set(consts[name])
            reward, success = port.reward(frame, consts, obs[rows], action[rows])
            const_blocks.append(block)
            rewards.append(jnp.broadcast_to(reward, (per_task,)).astype(jnp.float32))
            successes.append(jnp.broadcast_to(success, (per_task,)).astype(bool))
        consts = jnp.concatenate(const_blocks) if any(p.latch for p in self.ports) else state.consts
        return current, obs, jnp.concatenate(rewards), jnp.concatenate(successes), consts

    def _task_inputs(self, reply: Array, consts: Array, layout: TaskLayout) -> tuple[Frame, Frame]:
        frame = _unpack(reply, layout.reads)
        frame["tcp"] = (frame.right_finger + frame.left_finger) / 2  # SawyerXYZEnv.tcp_center
        return frame, _unpack(consts, layout.constants)

    def _reset_part(self, reply: Array) -> tuple[Array, Array]:
        start = self.layout.obs_start
        return reply[:, start : start + OBS_SIZE], reply[:, self.layout.consts_start :]
