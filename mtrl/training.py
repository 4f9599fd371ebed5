"""The host loop of off-policy multi-task training: jitted collect/learn iterations, evaluation, hooks.

The loop knows the env and agent only by their signatures. Logging, checkpointing and progress display are
handed to it as callbacks (`Hooks`), so the CLI, tests and other people's code share the same loop. With
`num_seeds > 1` the whole state gets a leading seed axis and every jitted function is `vmap`ped: one program
trains all seeds (pure-JAX envs only; host-stepped backends cannot be vmapped).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from mtrl import evaluation, rollout
from mtrl.types import Agent, Env


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """Budget and schedule of off-policy training; all counts are env steps *per task*."""

    steps_per_task: int = 2_000_000
    """Total env steps per task (the MOORE/Meta-World recipes use 2M)."""
    warmup_steps_per_task: int = 5_000
    """Steps per task with uniform random actions and no updates before learning starts."""
    steps_per_iteration: int = 50
    """Vector steps per jitted collect scan (also the granularity of logging)."""
    updates_per_step: int = 1
    """Gradient steps per vector step."""
    batch_per_task: int = 128
    """Rows per task in every task-balanced batch (MT10: 1280 rows in all)."""
    replay_per_task: int = 1_000_000
    """Replay capacity per task."""
    eval_every_steps_per_task: int = 50_000
    """Evaluate every so many steps per task (and always at the end); 0 evaluates only at the end."""
    eval_envs_per_task: int = 10
    """Parallel eval envs per task; every goal is still visited once."""
    eval_goals_per_task: int = 50
    """Goals per task visited by periodic evaluations (the final one always visits all)."""
    log_every_steps_per_task: int = 5_000
    """Emit training metrics every so many steps per task."""


@dataclasses.dataclass
class Hooks:
    """What the loop hands its results to; each defaults to doing nothing."""

    log: Callable[[int, dict[str, float]], None] = lambda step, metrics: None
    checkpoint: Callable[[int, Any], None] = lambda step, state: None
    progress: Callable[[int, dict[str, float]], None] = lambda step, metrics: None


@dataclasses.dataclass(frozen=True)
class Programs:
    """The jitted (and, for several seeds, vmapped) pieces of one training run."""

    init: Callable
    warmup: Callable
    train: Callable
    evaluate: Callable
    final_evaluate: Callable


def check_loop_config(config: LoopConfig, envs_per_task: int) -> None:
    """Reject budgets that cannot run, with one line naming the field."""
    for field in (
        "steps_per_task",
        "steps_per_iteration",
        "batch_per_task",
        "replay_per_task",
        "updates_per_step",
        "eval_envs_per_task",
        "log_every_steps_per_task",
    ):
        value = getattr(config, field)
        if value <= 0:
            raise ValueError(f"loop.{field} must be positive, got {value}")
    if config.warmup_steps_per_task < envs_per_task:
        raise ValueError(
            f"loop.warmup_steps_per_task ({config.warmup_steps_per_task}) must cover at least one "
            f"vector step ({envs_per_task} steps per task) so replay is not empty when learning starts"
        )


def make_programs(env: Env, eval_env: Env, agent: Agent, config: LoopConfig, num_seeds: int) -> Programs:
    """Bind env, agent and config into jitted functions of the train state."""
    if num_seeds > 1 and not getattr(env, "vmappable", False):
        raise ValueError(
            f"num_seeds={num_seeds} needs a pure-JAX env backend; {env.spec.name} steps on the host "
            "(run one seed per process instead)"
        )
    iteration = config.steps_per_iteration
    init = functools.partial(rollout.init_train_state, env, agent, replay_capacity=config.replay_per_task)
    warmup = functools.partial(rollout.collect, env, agent, num_steps=iteration, random_actions=True)

    def train(state):
        state = rollout.collect(env, agent, state, num_steps=iteration, random_actions=False)
        return rollout.learn(
            agent,
            state,
            num_updates=iteration * config.updates_per_step,
            batch_per_task=config.batch_per_task,
        )

    periodic = evaluation.episodes_per_env(eval_env.spec, config.eval_goals_per_task)
    final = evaluation.episodes_per_env(eval_env.spec, eval_env.spec.goals_per_task)
    evaluate = functools.partial(evaluation.run_episodes, eval_env, agent, num_episodes=periodic)
    final_evaluate = functools.partial(evaluation.run_episodes, eval_env, agent, num_episodes=final)
    fns = [init, warmup, train, evaluate, final_evaluate]
    if num_seeds > 1:
        fns = [jax.vmap(fn) for fn in fns]
    programs = Programs(*(jax.jit(fn) for fn in fns))
    if periodic == final:  # one compiled evaluation serves both
        programs = dataclasses.replace(programs, final_evaluate=programs.evaluate)
    return programs


def train(
    env: Env,
    eval_env: Env,
    agent: Agent,
    config: LoopConfig,
    keys: jax.Array,
    *,
    hooks: Hooks | None = None,
) -> tuple[rollout.TrainState, dict[str, float]]:
    """Train `agent` on `env`; returns the final state and the final evaluation's metrics.

    `keys` is one PRNG key, or a 1-D array of keys to train that many seeds in one vmapped program
    (seed i then follows exactly the run a single key `keys[i]` would give).
    """
    hooks = hooks or Hooks()
    spec = env.spec
    check_loop_config(config, spec.envs_per_task)
    num_seeds = keys.shape[0] if keys.ndim else 1
    programs = make_programs(env, eval_env, agent, config, num_seeds)
    state = programs.init(keys)

    steps_per_iteration = config.steps_per_iteration * spec.envs_per_task  # per task
    iterations = -(-config.steps_per_task // steps_per_iteration)
    warmup_iterations = -(-config.warmup_steps_per_task // steps_per_iteration)
    eval_every = _every(config.eval_every_steps_per_task, steps_per_iteration)
    log_every = _every(config.log_every_steps_per_task, steps_per_iteration)

    last_log_time, last_log_step = time.perf_counter(), 0
    update_metrics: dict[str, Any] = {}
    eval_metrics: dict[str, float] = {}
    for i in range(1, iterations + 1):
        if i <= warmup_iterations:
            state = programs.warmup(state)
        else:
            state, update_metrics = programs.train(state)
        step = i * steps_per_iteration
        final = i == iterations
        if i % log_every == 0 or final:
            now = time.perf_counter()
            metrics = _train_metrics(state, update_metrics)
            metrics["env/steps_per_task"] = step
            metrics["env/steps_per_second"] = (
                (step - last_log_step) * spec.num_tasks / max(now - last_log_time, 1e-9)
            )
            hooks.log(step * spec.num_tasks, metrics)
            hooks.progress(step * spec.num_tasks, metrics)
            state = state.replace(stats=state.stats.clear_totals())
            last_log_time, last_log_step = time.perf_counter(), step
        if final or (eval_every and i % eval_every == 0):
            eval_start = time.perf_counter()
            evaluate = programs.final_evaluate if final else programs.evaluate
            eval_keys = _fold_in(keys, i)
            flags = evaluate(state.agent, eval_keys)
            eval_metrics = evaluation.eval_metrics(eval_env.spec, np.asarray(flags))
            eval_metrics["env/steps_per_task"] = step
            hooks.log(step * spec.num_tasks, eval_metrics)
            hooks.progress(step * spec.num_tasks, eval_metrics)
            hooks.checkpoint(step * spec.num_tasks, state.agent)
            last_log_time += time.perf_counter() - eval_start  # evaluation is not training throughput
    return state, eval_metrics


def _fold_in(keys: jax.Array, data: int) -> jax.Array:
    if keys.ndim:
        return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, data)
    return jax.random.fold_in(keys, data)


def _every(steps_per_task: int, steps_per_iteration: int) -> int:
    return max(1, round(steps_per_task / steps_per_iteration)) if steps_per_task > 0 else 0


def _train_metrics(state: rollout.TrainState, update_metrics: dict[str, Any]) -> dict[str, float]:
    stats = jax.device_get(state.stats)
    episodes = float(np.sum(stats.episodes))
    metrics = {k: float(np.mean(v)) for k, v in jax.device_get(update_metrics).items()}
    if episodes:
        metrics["train/success"] = float(np.sum(stats.successes)) / episodes
        metrics["train/episode_return"] = float(np.sum(stats.returns)) / episodes
    return metrics
