"""The native backend's host side: physics only, for every env of the batch, in one call.

It owns metaworld env objects, so models, initial states and resets are metaworld's own. A vector
step does what `SawyerXYZEnv.step` does to the simulation, with metaworld's own dtypes so that the
physics is bit-identical: move the mocap by the clipped action (float32 * action_scale, clipped to
the mocap box) and reset its orientation, set the gripper controls, `mj_step` frame_skip times, then
`mj_forward` as metaworld does (it is not optional: it leaves the constraint solver's warm start
that the next step begins from), but not `mj_rnePostConstraint`, whose outputs nothing reads and
which feeds nothing back. Envs are split over worker threads; MuJoCo releases the GIL while it steps.

Resets (1 in 500 steps) call metaworld's own `set_task` + `reset`; the reply then carries the reset
observation and the new episode's constants (target, initial positions, ...).
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np

from .. import snapshot
from ..benchmarks import ACTION_SIZE, EPISODE_LENGTH, OBS_SIZE, BenchmarkTasks
from .layout import MOCAP_COLUMNS, ReplyLayout, TaskLayout
from .port import COMMON_CONSTANTS, COMMON_READS, READ_KINDS, TaskPort

REQUEST_SIZE = ACTION_SIZE + 3  # action, steps so far, done, goal index for the next episode
MOCAP_QUAT = np.array([1.0, 0.0, 1.0, 0.0])  # the gripper orientation set_xyz_action imposes every step


def default_threads() -> int:
    """Worker threads for the physics: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


# MjData fields the host reads or writes; MuJoCo allocates them all in one buffer per MjData.
_RAW_FIELDS = ("qpos", "qvel", "ctrl", "mocap_pos", "mocap_quat", "xpos", "xquat", "xmat", "site_xpos",
               "site_xmat", "geom_xpos", "geom_xmat")  # fmt: skip
_INPUTS = 3 + 4 + 2  # what a step writes: mocap position, mocap orientation, gripper controls


def _raw_view(data) -> tuple[np.ndarray, dict[str, int]]:
    """One float64 view spanning `_RAW_FIELDS` in MjData's buffer, and each field's offset in it.

    With it, a step's writes are one `put` and its reads one `take`, whatever the task reads: the per-env
    Python work, which holds the GIL while the other threads' MuJoCo calls run, stays a few microseconds.
    """
    arrays = {name: getattr(data, name) for name in _RAW_FIELDS}
    starts = {name: a.__array_interface__["data"][0] for name, a in arrays.items()}
    base = min(starts.values())
    end = max(starts[name] + a.nbytes for name, a in arrays.items())
    if any((start - base) % 8 for start in starts.values()):
        raise RuntimeError("MjData fields are not 8-byte aligned relative to each other")
    raw = np.ctypeslib.as_array((ctypes.c_double * ((end - base) // 8)).from_address(base))
    for name, a in arrays.items():  # the view must see exactly what the bindings see
        assert np.array_equal(raw[(starts[name] - base) // 8 :][: a.size], a.ravel(), equal_nan=True), name
    return raw, {name: (start - base) // 8 for name, start in starts.items()}


class _Slot:
    """One env's MuJoCo handles and the flat indices of everything a step writes and reads.

    The raw view keeps the MjData alive through `self.data`; MuJoCo never reallocates these fields
    (resets write into them), so the indices stay valid for the env's life.
    """

    def __init__(self, env, reads: dict, layout: TaskLayout):
        self.model, self.data, self.nstep = env.model, env.data, env.frame_skip
        self.raw, offset = _raw_view(env.data)
        self.inputs = np.concatenate(
            [
                offset["mocap_pos"] + np.arange(3),
                offset["mocap_quat"] + np.arange(4),
                offset["ctrl"] + np.arange(2),
            ]
        )
        self.width = max(stop for _, stop in layout.reads.values())
        self.outputs = np.zeros(self.width + MOCAP_COLUMNS, np.int64)
        self.touching = []  # (column, (object geom, left pad geom, right pad geom))
        for name, read in reads.items():
            start, stop = layout.reads[name]
            field = READ_KINDS[read.kind][0]
            if field == "contact":
                self.touching.append((start, tuple(read.indices(self.model))))
            else:
                self.outputs[start:stop] = offset[field] + read.indices(self.model)
        self.outputs[self.width :] = offset["mocap_pos"] + np.arange(3)  # read back, as metaworld does

    def step(self, inputs: np.ndarray, row: np.ndarray, unstable_column: int) -> None:
        """Write the step's inputs, advance MuJoCo as metaworld does, and copy the reads into `row`."""
        resets = snapshot.unstable_resets(self.data)
        self.raw.put(self.inputs, inputs)
        mujoco.mj_step(self.model, self.data, nstep=self.nstep)
        mujoco.mj_forward(self.model, self.data)
        self.raw.take(self.outputs, out=row[: len(self.outputs)])
        row[unstable_column] = snapshot.unstable_resets(self.data) > resets
        for column, geoms in self.touching:
            row[column] = touching_object(self.data, *geoms)


def touching_object(data, object_geom: int, left_pad: int, right_pad: int) -> float:
    """`SawyerXYZEnv.touching_object`, vectorised over the contact list: 1.0 if both pads press on it."""
    pairs = data.contact.geom
    efc_force, efc_address = data.efc_force, data.contact.efc_address
    has_object = (pairs == object_geom).any(axis=1)
    forces = [
        efc_force[efc_address[has_object & (pairs == pad).any(axis=1)]].sum() for pad in (left_pad, right_pad)
    ]
    return float(forces[0] > 0 and forces[1] > 0)


class NativeHost:
    """Metaworld envs of one batched env, task-major, stepped physics-only; called via io_callback."""

    def __init__(
        self,
        tasks: BenchmarkTasks,
        ports: tuple[TaskPort, ...],
        envs_per_task: int,
        seed: int,
        threads: int | None = None,
    ):
        self.layout = ReplyLayout(tuple(TaskLayout.of(port) for port in ports))
        self.envs, self.goals, self.slots, self.constants = [], [], [], []
        for task, (env_cls, goals, port) in enumerate(
            zip(tasks.env_classes, tasks.goals, ports, strict=True)
        ):
            reads = {**COMMON_READS, **port.reads}
            for _ in range(envs_per_task):
                env = env_cls(reward_function_version="v2")
                env.seed(seed)  # as the official backend does
                _check_supported(env)
                env.set_task(goals[0])  # fixes observability, hence the observation bounds
                self.envs.append(env)
                self.goals.append(goals)
                self.slots.append(_Slot(env, reads, self.layout.tasks[task]))
                self.constants.append(({**COMMON_CONSTANTS, **port.constants}, self.layout.tasks[task]))
        n = len(self.envs)
        space = [env.sawyer_observation_space for env in self.envs]
        self.obs_low = np.stack([s.low for s in space]).astype(np.float32)
        self.obs_high = np.stack([s.high for s in space]).astype(np.float32)
        self.action_scale = np.array([env.action_scale for env in self.envs], np.float32)[:, None]
        self.mocap_low = np.stack([env.mocap_low for env in self.envs])
        self.mocap_high = np.stack([env.mocap_high for env in self.envs])
        self.mocap = np.zeros((n, 3))
        self._mocap_quat = np.tile(
            MOCAP_QUAT, (n, 1)
        )  # constant, but MuJoCo's reset of unstable data clears it
        self._mocap_columns = np.stack([slot.width + np.arange(MOCAP_COLUMNS) for slot in self.slots])
        self.steps = np.zeros(n, np.int64)
        self.threads = min(threads or default_threads(), n)
        self._chunks = [np.arange(i, n, self.threads) for i in range(self.threads)]
        self._pool = ThreadPoolExecutor(self.threads - 1) if self.threads > 1 else None

    def reset(self, goal_index: np.ndarray) -> np.ndarray:
        """Reset every env to its goal configuration; the reply holds reset obs and constants."""
        reply = np.zeros((len(self.envs), self.layout.width))
        for i, goal in enumerate(np.asarray(goal_index)):
            self._reset_one(i, int(goal), reply[i])
        return reply.astype(np.float32)

    def step(self, request: np.ndarray) -> np.ndarray:
        """One physics step of every env, then metaworld's reset where `done` (same-step auto-reset)."""
        request = np.asarray(request)
        action = request[:, :ACTION_SIZE]
        steps, done, goal_index = request[:, ACTION_SIZE:].T.astype(np.int64)
        self._check_in_sync(steps)
        # SawyerXYZEnv.set_xyz_action, for all envs at once and with metaworld's dtypes.
        delta = np.clip(action[:, :3], -1, 1) * self.action_scale
        self.mocap = np.clip(self.mocap + delta, self.mocap_low, self.mocap_high)
        gripper = action[:, -1:].astype(np.float64)
        inputs = np.concatenate([self.mocap, self._mocap_quat, gripper, -gripper], axis=1)
        reply = np.zeros((len(self.envs), self.layout.width))
        if self._pool is None:
            self._physics(self._chunks[0], inputs, reply)
        else:
            futures = [self._pool.submit(self._physics, c, inputs, reply) for c in self._chunks[1:]]
            self._physics(self._chunks[0], inputs, reply)
            for future in futures:
                future.result()
        # metaworld re-reads the mocap every step (MuJoCo may have reset an unstable env)
        self.mocap = np.take_along_axis(reply, self._mocap_columns, axis=1)
        self.steps += 1
        for i in np.flatnonzero(done):
            self._reset_one(i, int(goal_index[i]), reply[i])
        return reply.astype(np.float32)

    def _physics(self, envs: np.ndarray, inputs: np.ndarray, reply: np.ndarray) -> None:
        slots, unstable_column = self.slots, self.layout.unstable_column
        for i in envs:
            slots[i].step(inputs[i], reply[i], unstable_column)

    def _reset_one(self, i: int, goal: int, row: np.ndarray) -> None:
        env = self.envs[i]
        env.set_task(self.goals[i][goal])
        obs, _ = env.reset()
        self.mocap[i] = env.data.mocap_pos[0]
        self.steps[i] = 0
        row[self.layout.obs_start : self.layout.obs_start + OBS_SIZE] = obs
        constants, layout = self.constants[i]
        base = self.layout.consts_start
        for name, constant in constants.items():
            start, stop = layout.constants[name]
            row[base + start : base + stop] = np.asarray(constant.get(env), np.float64).ravel()

    def _check_in_sync(self, steps: np.ndarray) -> None:
        """Refuse a stale JAX state: the host holds physics for the latest state only."""
        if not np.array_equal(self.steps, steps):
            bad = int(np.flatnonzero(self.steps != steps)[0])
            raise RuntimeError(
                f"native Meta-World env out of sync: env {bad} is at step {self.steps[bad]} "
                f"but the state says {steps[bad]}; only the latest state can be stepped"
            )

    def snapshot(self) -> dict:
        """Every env's state (see `snapshot.py`) plus the host's own mocap targets and step counters."""
        envs = {f"env{i}": snapshot.snapshot(env) for i, env in enumerate(self.envs)}
        return {"envs": envs, "mocap": self.mocap.copy(), "steps": self.steps.copy()}

    def restore(self, saved: dict, goal_index: np.ndarray) -> None:
        """Return to `saved`; each env is first reset to the goal it was playing (see `snapshot.restore`)."""
        self.reset(goal_index)
        for i, env in enumerate(self.envs):
            snapshot.restore(env, saved["envs"][f"env{i}"])
        self.mocap = np.array(saved["mocap"], np.float64)
        self.steps = np.array(saved["steps"], np.int64)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for env in self.envs:
            env.close()


def _check_supported(env) -> None:
    """The vectorised action code assumes what every Meta-World v3 env has; say so if one does not."""
    name = type(env).__name__
    if env.max_path_length != EPISODE_LENGTH:
        raise RuntimeError(f"{name} truncates at {env.max_path_length}, not {EPISODE_LENGTH}")
    if env.model.nmocap != 1 or env.model.nu != 2:
        raise RuntimeError(f"{name} has {env.model.nmocap} mocap bodies and {env.model.nu} actuators")
    for pad in ("init_left_pad", "init_right_pad"):  # see port.COMMON_CONSTANTS
        if not np.shares_memory(getattr(env, pad), env.data.xpos):
            raise RuntimeError(
                f"{name}.{pad} is no longer a view of data.xpos; the native ports assume it is"
            )
