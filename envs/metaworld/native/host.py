"""The native backend's host side: physics only, for every env of the batch, in one call.

It owns metaworld env objects, so models, initial states and resets are metaworld's own. A vector
step does what `SawyerXYZEnv.step` does to the simulation, with metaworld's own dtypes so that the
physics is bit-identical: move the mocap by the clipped action (float32 * action_scale, clipped to
the mocap box) and reset its orientation, set the gripper controls, `mj_step` frame_skip times, then
`mj_forward` as metaworld does (it is not optional: it leaves the constraint solver's warm start
that the next step begins from), but not `mj_rnePostConstraint`, whose outputs nothing reads and
which feeds nothing back. Writes and reads go through one flat view over all envs' MjData and the
physics through a persistent thread pool (`physics.py`): the per-env Python is two MuJoCo calls.

Resets (1 in 500 steps) call metaworld's own `set_task` + `reset`; the reply then carries the reset
observation and the new episode's constants (target, initial positions, ...).
"""

from __future__ import annotations

import os

import numpy as np

from .. import snapshot
from ..benchmarks import ACTION_SIZE, EPISODE_LENGTH, OBS_SIZE, BenchmarkTasks
from .layout import MOCAP_COLUMNS, ReplyLayout, TaskLayout
from .physics import BatchView, PhysicsPool, step_physics
from .port import COMMON_CONSTANTS, COMMON_READS, READ_KINDS, TaskPort

REQUEST_SIZE = ACTION_SIZE + 3  # action, steps so far, done, goal index for the next episode
MOCAP_QUAT = np.array([1.0, 0.0, 1.0, 0.0])  # the gripper orientation set_xyz_action imposes every step


def default_threads() -> int:
    """Worker threads for the physics: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


# MjData fields the host reads or writes through the flat view.
_VIEW_FIELDS = ("qpos", "qvel", "ctrl", "mocap_pos", "mocap_quat", "xpos", "xquat", "xmat", "site_xpos",
                "site_xmat", "geom_xpos", "geom_xmat")  # fmt: skip


def _input_index(view: BatchView, env: int) -> np.ndarray:
    """Where a step's 9 inputs go: mocap position, mocap orientation, the two gripper controls."""
    return np.concatenate(
        [view.index(env, "mocap_pos", range(3)), view.index(env, "mocap_quat", range(4)),
         view.index(env, "ctrl", range(2))]
    )  # fmt: skip


def _output_index(view: BatchView, env: int, model, reads: dict, layout: TaskLayout, width: int):
    """Where each reply column of env `env` is read from (padding reads a zero), and its contact reads."""
    index = np.full(width + MOCAP_COLUMNS, view.zero_index, np.int64)
    touching = []  # (column, (object geom, left pad geom, right pad geom))
    for name, read in reads.items():
        start, stop = layout.reads[name]
        field = READ_KINDS[read.kind][0]
        if field == "contact":
            touching.append((start, tuple(int(g) for g in read.indices(model))))
        else:
            index[start:stop] = view.index(env, field, read.indices(model))
    index[width:] = view.index(env, "mocap_pos", range(3))  # read back, as metaworld does
    return index, touching


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
    """Metaworld envs of one batched env, task-major, stepped physics-only; called via io_callback.

    With `copies` > 1 it holds that many copies of the batch, one per vmapped seed, one after another, and
    steps them all in one call: requests and replies then carry a leading copy axis.
    """

    def __init__(
        self,
        tasks: BenchmarkTasks,
        ports: tuple[TaskPort, ...],
        envs_per_task: int,
        seed: int,
        threads: int | None = None,
        copies: int = 1,
    ):
        self.layout = ReplyLayout(tuple(TaskLayout.of(port) for port in ports))
        self.envs, self.goals, self.constants, reads = [], [], [], []
        for task, (env_cls, goals, port) in [
            *enumerate(zip(tasks.env_classes, tasks.goals, ports, strict=True))
        ] * copies:
            for _ in range(envs_per_task):
                env = env_cls(reward_function_version="v2")
                env.seed(seed)  # as the official backend does
                _check_supported(env)
                env.set_task(goals[0])  # fixes observability, hence the observation bounds
                self.envs.append(env)
                self.goals.append(goals)
                reads.append(({**COMMON_READS, **port.reads}, self.layout.tasks[task]))
                self.constants.append(({**COMMON_CONSTANTS, **port.constants}, self.layout.tasks[task]))
        n = len(self.envs)
        self.view = BatchView([env.data for env in self.envs], _VIEW_FIELDS, snapshot.UNSTABLE)
        self.inputs = np.stack([_input_index(self.view, i) for i in range(n)])
        width = self.layout.reads_width
        outputs = [
            _output_index(self.view, i, env.model, env_reads, layout, width)
            for i, (env, (env_reads, layout)) in enumerate(zip(self.envs, reads, strict=True))
        ]
        self.outputs = np.stack([index for index, _ in outputs])
        self.touching = [touching for _, touching in outputs]  # per env: [(column, geoms), ...]
        self._touching_envs = [i for i, touching in enumerate(self.touching) if touching]
        space = [env.sawyer_observation_space for env in self.envs[: n // copies]]  # every copy's
        self.obs_low = np.stack([s.low for s in space]).astype(np.float32)
        self.obs_high = np.stack([s.high for s in space]).astype(np.float32)
        self.action_scale = np.array([env.action_scale for env in self.envs], np.float32)[:, None]
        self.mocap_low = np.stack([env.mocap_low for env in self.envs])
        self.mocap_high = np.stack([env.mocap_high for env in self.envs])
        self.mocap = np.zeros((n, 3))
        # constant, but MuJoCo's reset of unstable data clears it
        self._mocap_quat = np.tile(MOCAP_QUAT, (n, 1))
        self._reply = np.zeros((n, self.layout.width))
        self.steps = np.zeros(n, np.int64)
        self.threads = min(threads or default_threads(), n)
        self._unstable_before = np.zeros(n, np.int64)
        self._ending: dict[int, int] = {}  # env -> goal of its next episode, for envs whose episode ends
        self.pool = PhysicsPool(self._advance, n, self.threads)

    def reset(self, goal_index: np.ndarray) -> np.ndarray:
        """Reset every env to its goal configuration; the reply holds reset obs and constants."""
        goal_index = np.asarray(goal_index)
        reply = np.zeros((len(self.envs), self.layout.width))
        for i, goal in enumerate(goal_index.reshape(-1)):
            self._reset_one(i, int(goal), reply[i])
        return reply.astype(np.float32).reshape(*goal_index.shape, -1)

    def step(self, request: np.ndarray) -> np.ndarray:
        """One physics step of every env, then metaworld's reset where `done` (same-step auto-reset)."""
        request = np.asarray(request)
        envs_shape = request.shape[:-1]  # [envs], or [copies, envs]
        request = request.reshape(-1, request.shape[-1])
        action = request[:, :ACTION_SIZE]
        steps, done, goal_index = request[:, ACTION_SIZE:].T.astype(np.int64)
        self._check_in_sync(steps)
        # SawyerXYZEnv.set_xyz_action, for all envs at once and with metaworld's dtypes.
        delta = np.clip(action[:, :3], -1, 1) * self.action_scale
        self.mocap = np.clip(self.mocap + delta, self.mocap_low, self.mocap_high)
        gripper = action[:, -1:].astype(np.float64)
        self.view.values[self.inputs] = np.concatenate([self.mocap, self._mocap_quat, gripper, -gripper], 1)
        self._unstable_before = self.view.unstable_counts()
        ending = np.flatnonzero(done)
        self._ending = {int(i): int(goal_index[i]) for i in ending}
        self._reply[:, self.layout.obs_start :] = 0.0
        self.steps += 1
        self.pool.run()  # ending envs read their final state and reset inside (`_advance`)
        self._ending = {}
        self._read(np.delete(np.arange(len(self.envs)), ending) if len(ending) else slice(None))
        return self._reply.astype(np.float32).reshape(*envs_shape, -1)

    def _advance(self, i: int) -> None:
        """Env i's physics step; at the end of its episode also its reads and metaworld's reset.

        Runs on the pool's threads: resets cost ~100 physics steps each (metaworld settles the hand),
        so they run in parallel with the other envs' physics rather than one by one afterwards.
        """
        env = self.envs[i]
        step_physics(env.model, env.data, env.frame_skip)
        goal = self._ending.get(i)
        if goal is not None:
            self._read([i])
            self._reset_one(i, goal, self._reply[i])

    def _read(self, rows) -> None:
        """Copy the step's reads of `rows` into the reply and update the host's mocap targets from them."""
        reply, reads = self._reply, self.outputs.shape[1]
        reply[rows, :reads] = self.view.values[self.outputs[rows]]
        unstable = self.view.unstable_counts()[rows] > self._unstable_before[rows]
        reply[rows, self.layout.unstable_column] = unstable
        for i in self._touching_envs if isinstance(rows, slice) else rows:
            for column, geoms in self.touching[i]:
                reply[i, column] = touching_object(self.envs[i].data, *geoms)
        # metaworld re-reads the mocap every step (MuJoCo may have reset an unstable env)
        self.mocap[rows] = reply[rows, reads - MOCAP_COLUMNS : reads]

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
        self.reset(np.asarray(goal_index).reshape(-1))
        for i, env in enumerate(self.envs):
            snapshot.restore(env, saved["envs"][f"env{i}"])
        self.mocap = np.array(saved["mocap"], np.float64)
        self.steps = np.array(saved["steps"], np.int64)

    def close(self) -> None:
        self.pool.close()
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
