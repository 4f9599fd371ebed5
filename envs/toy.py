"""A multi-goal point mass in pure JAX: the fast env for tests and the fully jitted example.

A point in the plane starts near the origin; task `t` asks it to reach a goal in direction 2πt/T at radius 0.7
(each task has `goals_per_task` goal configurations jittered around that point, by less than the success
radius, so a policy that knows only the task can succeed on every goal). The goal is *not* in the observation:
only the one-hot task id tells tasks apart, so a single policy must condition on the task — the multi-task
setting in miniature. Episodes truncate after `episode_length` steps and never terminate, as in
Meta-World; success is being within `success_radius` of the goal.

`toy-ml` (`hidden_goals=True`) is the meta-RL family in miniature: each task's goals spread over a half
circle of radius 0.7 (rotated by 2πt/T for task t), the observation is the position only, so the goal can
be inferred only from rewards (as in MAML's 2-D navigation). Its "test" split draws another 50 goals per
task from the same arcs: held-out goals, as ML1's test goals are.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from mtrl.types import EnvSpec, GoalSchedule, TimeStep

from .goals import check_episodes_per_goal, goals_after_step, next_goal_indices


@dataclasses.dataclass(frozen=True, kw_only=True)
class PointMassConfig:
    """Sizes of the toy task family."""

    num_tasks: int = 4
    episode_length: int = 50
    goals_per_task: int = 50
    goal_radius: float = 0.7
    goal_jitter: float = 0.05
    step_size: float = 0.1
    success_radius: float = 0.1
    hidden_goals: bool = False
    """Meta-RL variant: goals spread over a half circle per task and no task id in the observation."""


TOY_ML = PointMassConfig(episode_length=40, success_radius=0.15, hidden_goals=True, num_tasks=1)
"""The `toy-ml` family: one task, 50 goals on a half circle, 40-step episodes (a sweep of the arc fits in
one), success within 0.15 (a policy that ignores rewards succeeds on ~1 goal in 7)."""


@struct.dataclass
class PointMassState:
    """Per-env position, step count and goal index, plus the key for the next goal draws."""

    pos: jax.Array
    steps: jax.Array
    goal_index: jax.Array
    episodes: jax.Array
    key: jax.Array


class PointMass:
    """Batched multi-task point mass (see module docstring); `reset`/`step` are pure and jittable."""

    vmappable = True  # pure JAX: whole training runs can be vmapped over seeds
    steps_on_host = False  # pure JAX
    render_fps = None  # no renderer: a point in a plane is not worth a video

    def __init__(
        self,
        config: PointMassConfig,
        *,
        seed: int = 0,
        envs_per_task: int = 1,
        goal_sampling: str = "random",
        episodes_per_goal: int = 1,
        split: str = "train",
    ):
        check_episodes_per_goal(episodes_per_goal)
        splits = ("train", "test") if config.hidden_goals else ("train",)
        if split not in splits:
            raise ValueError(f"unknown split {split!r} for the toy env; valid: {', '.join(splits)}")
        self.config = config
        self.schedule = GoalSchedule(goal_sampling, episodes_per_goal)
        self.spec = EnvSpec(
            name="toy-ml" if config.hidden_goals else "toy",
            obs_size=2 if config.hidden_goals else 2 + config.num_tasks,
            action_size=2,
            task_names=tuple(f"point-goal-{t}" for t in range(config.num_tasks)),
            envs_per_task=envs_per_task,
            episode_length=config.episode_length,
            goals_per_task=config.goals_per_task,
            task_id_columns=0 if config.hidden_goals else config.num_tasks,
        )
        goal_key = jax.random.key(seed)
        if split == "test":  # held-out goals from another key on the same arcs
            goal_key = jax.random.fold_in(goal_key, 1)
        self.goals = _make_goals(goal_key, config)  # [tasks, goals, 2]
        self.task_id = jnp.repeat(jnp.arange(config.num_tasks, dtype=jnp.int32), envs_per_task)
        # a Python loop over reset/step runs one compiled program per call; traced (jit, scan) they inline
        self.reset, self.step = jax.jit(self.reset), jax.jit(self.step)

    def reset(self, key: jax.Array) -> tuple[PointMassState, TimeStep]:
        n = self.spec.num_envs
        key, goal_key = jax.random.split(key)
        episodes = jnp.zeros(n, jnp.int32)
        state = PointMassState(
            pos=jnp.zeros((n, 2)),
            steps=jnp.zeros(n, jnp.int32),
            goal_index=self._next_goals(goal_key, episodes),
            episodes=episodes,
            key=key,
        )
        obs = self._observe(state.pos)
        zeros = jnp.zeros(n, bool)
        step = TimeStep(obs, jnp.zeros(n), zeros, zeros, zeros, self.task_id, obs, zeros)
        return state, step

    def step(self, state: PointMassState, action: jax.Array) -> tuple[PointMassState, TimeStep]:
        cfg = self.config
        pos = jnp.clip(state.pos + cfg.step_size * jnp.clip(action, -1.0, 1.0), -1.0, 1.0)
        goal = self.goals[self.task_id, state.goal_index]
        distance = jnp.linalg.norm(pos - goal, axis=-1)
        success = distance < cfg.success_radius
        reward = 1.0 - distance + success.astype(jnp.float32)
        steps = state.steps + 1
        truncated = steps >= cfg.episode_length
        final_obs = self._observe(pos)

        key, goal_key = jax.random.split(state.key)
        episodes = state.episodes + truncated
        spec = self.spec
        goal_index = goals_after_step(
            self.schedule.sampling,
            goal_key,
            episodes,
            truncated,
            state.goal_index,
            spec.envs_per_task,
            spec.goals_per_task,
            self.schedule.episodes_per_goal,
        )
        state = PointMassState(
            pos=jnp.where(truncated[:, None], 0.0, pos),
            steps=jnp.where(truncated, 0, steps),
            goal_index=goal_index,
            episodes=episodes,
            key=key,
        )
        obs = jnp.where(truncated[:, None], self._observe(state.pos), final_obs)
        terminated = jnp.zeros_like(truncated)
        stable = jnp.zeros_like(terminated)
        return state, TimeStep(obs, reward, terminated, truncated, success, self.task_id, final_obs, stable)

    def host_state(self) -> None:
        """Nothing lives outside the JAX state: a checkpoint of it resumes the env exactly."""
        return None

    def restore_host_state(self, state, saved: dict) -> None:
        del state, saved  # nothing to restore (`host_state` is None)

    def render(self, state, envs, **options):
        raise ValueError("the toy env has no renderer (render_fps is None)")

    def close(self) -> None:
        """Nothing to release: the env is pure JAX."""

    def _next_goals(self, key: jax.Array, episodes: jax.Array) -> jax.Array:
        spec = self.spec
        return next_goal_indices(
            self.schedule.sampling,
            key,
            episodes,
            spec.envs_per_task,
            spec.goals_per_task,
            self.schedule.episodes_per_goal,
        )

    def _observe(self, pos: jax.Array) -> jax.Array:
        if self.config.hidden_goals:
            return pos.astype(jnp.float32)
        one_hot = jax.nn.one_hot(self.task_id, self.config.num_tasks)
        return jnp.concatenate([pos, one_hot], axis=-1).astype(jnp.float32)


def _make_goals(key: jax.Array, config: PointMassConfig) -> jax.Array:
    angles = 2 * jnp.pi * jnp.arange(config.num_tasks) / config.num_tasks
    if config.hidden_goals:  # goals anywhere on the task's half circle
        arc = jnp.pi * jax.random.uniform(key, (config.num_tasks, config.goals_per_task))
        goal_angles = angles[:, None] + arc
        return config.goal_radius * jnp.stack([jnp.cos(goal_angles), jnp.sin(goal_angles)], axis=-1)
    centres = config.goal_radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)
    jitter = jax.random.uniform(key, (config.num_tasks, config.goals_per_task, 2), minval=-1.0, maxval=1.0)
    return centres[:, None, :] + config.goal_jitter * jitter
