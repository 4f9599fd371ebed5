"""The host loop of off-policy multi-task training: jitted collect/learn iterations, evaluation, hooks.

The loop knows the env and agent only by their signatures. Logging, checkpointing and progress display are
handed to it as callbacks (`Hooks`), so the CLI, tests and other people's code share the same loop. With
`num_seeds > 1` the whole state gets a leading seed axis and every jitted function is `vmap`ped: one program
trains all seeds (pure-JAX envs only; host-stepped backends cannot be vmapped).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mtrl import devices, evaluation, offpolicy
from mtrl.types import Agent, Env, EnvSpec


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """Budget and schedule of training; all counts are env steps *per task*.

    Warm-up, steps per iteration, updates per step, batch and replay sizes are the off-policy (SAC family)
    loop's; agents that collect their own episodes (MT-PPO, MAML, RL², PEARL) size their iterations in
    their own configs and use the budget, evaluation, logging and checkpoint fields.
    """

    steps_per_task: int = 2_000_000
    """Total env steps per task (the MOORE/Meta-World recipes use 2M)."""
    warmup_steps_per_task: int = 5_000
    """Steps per task that fill replay before the first update (MOORE's authors: 1,500)."""
    warmup_actions: str = "uniform"
    """Who acts during warm-up: "uniform" (random actions in the action box) or "policy" (the untrained
    agent's sampled actions, as the MOORE authors' initial replay fill)."""
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
    eval_before_training: bool = False
    """Also evaluate the untrained agent, logged at step 0 (the MOORE authors' MiniGrid runs do: their curves
    start at epoch 0). Not repeated when a run resumes."""
    moore_eval_episodes: int = 0
    """Also evaluate by the MOORE authors' protocol at every evaluation: this many episodes per task, goals
    drawn at random, actions sampled from the policy (metrics `eval_moore/…`; MOORE presets: 10, MiniGrid
    presets: 16, with returns). 0: off. Multi-task agents (not the meta-RL ones)."""
    log_every_steps_per_task: int = 5_000
    """Emit training metrics every so many steps per task."""
    video_every_steps_per_task: int = 0
    """Film the policy every so many steps per task and at the end (greedy episodes, one per task, into
    `RUN_DIR/videos/step-<step>/` and W&B; Meta-World and MiniGrid); 0: never."""
    checkpoint_every_steps_per_task: int = 50_000
    """Write a resumable checkpoint every so many steps per task (and at the end, and on SIGINT/SIGTERM)."""
    meta_adaptation_episodes: int = 10
    """Meta-RL evaluation: exploration episodes per held-out goal before the agent adapts (Meta-World: 10)."""
    meta_scored_episodes: int = 3
    """Meta-RL evaluation: scored episodes per goal after adapting (Meta-World: 3)."""


@dataclasses.dataclass
class Hooks:
    """What the loop hands its results to; each defaults to doing nothing."""

    log: Callable[[int, dict[str, float]], None] = lambda step, metrics: None
    checkpoint: Callable[[int, Any, int], None] = lambda step, state, iteration: None
    """Called with (total env steps, train state, iterations completed)."""
    progress: Callable[[int, dict[str, float]], None] = lambda step, metrics: None
    stop_requested: Callable[[], bool] = lambda: False
    """Polled after every iteration: true stops the run after a checkpoint (how SIGTERM is handled)."""
    video: Callable[[int, Any], None] = lambda step, state: None
    """Called with (total env steps, train state) when a video is due (`video_every_steps_per_task`)."""
    evaluation_progress: Callable[[str, int, int], None] | None = None
    """Called from inside evaluations with (protocol, episode rounds done, rounds in all) after each round;
    None leaves the compiled evaluations free of host callbacks (which the compilation cache cannot keep)."""


@dataclasses.dataclass(frozen=True)
class Programs:
    """The jitted (and, for several seeds, vmapped) pieces of one training run."""

    init: Callable
    warmup: Callable
    train: Callable
    evaluate: Callable
    final_evaluate: Callable
    moore_evaluate: Callable | None = None


WARMUP_ACTIONS = ("uniform", "policy")


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
        "meta_adaptation_episodes",
        "meta_scored_episodes",
    ):
        value = getattr(config, field)
        if value <= 0:
            raise ValueError(f"loop.{field} must be positive, got {value}")
    for field in ("eval_every_steps_per_task", "checkpoint_every_steps_per_task"):
        value = getattr(config, field)
        if value < 0:
            raise ValueError(f"loop.{field} must be >= 0 (0: only at the end), got {value}")
    if config.video_every_steps_per_task < 0:
        value = config.video_every_steps_per_task
        raise ValueError(f"loop.video_every_steps_per_task must be >= 0 (0: never), got {value}")
    if config.warmup_actions not in WARMUP_ACTIONS:
        raise ValueError(
            f"unknown loop.warmup_actions {config.warmup_actions!r}; valid: {', '.join(WARMUP_ACTIONS)}"
        )
    if config.moore_eval_episodes < 0:
        raise ValueError(f"loop.moore_eval_episodes must be >= 0 (0: off), got {config.moore_eval_episodes}")
    if config.warmup_steps_per_task < envs_per_task:
        raise ValueError(
            f"loop.warmup_steps_per_task ({config.warmup_steps_per_task}) must cover at least one "
            f"vector step ({envs_per_task} steps per task) so replay is not empty when learning starts"
        )


def all_finite(tree: Any) -> jax.Array:
    """1.0 if every floating-point leaf of `tree` is finite, else 0.0 (one fused reduction under jit)."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves])).astype(jnp.float32)


def make_programs(
    env: Env,
    eval_env: Env,
    agent: Agent,
    config: LoopConfig,
    num_seeds: int,
    moore_eval_env: Env | None = None,
    evaluation_progress: Callable[[str, int, int], None] | None = None,
) -> Programs:
    """Bind env, agent and config into jitted functions of the train state."""
    if num_seeds > 1 and not env.vmappable:
        raise ValueError(
            f"num_seeds={num_seeds} needs an env that vmaps over seeds (pure JAX, or Meta-World's native "
            f"backend built for {num_seeds} seeds); this {env.spec.name} env steps on the host (run one seed "
            "per process instead)"
        )
    iteration = config.steps_per_iteration
    init = functools.partial(offpolicy.init_state, env, agent, replay_capacity=config.replay_per_task)
    random_actions = config.warmup_actions == "uniform"
    warmup = functools.partial(
        offpolicy.collect, env, agent, num_steps=iteration, random_actions=random_actions
    )

    def train(state):
        state = offpolicy.collect(env, agent, state, num_steps=iteration, random_actions=False)
        state, metrics = offpolicy.learn(
            agent,
            state,
            num_updates=iteration * config.updates_per_step,
            batch_per_task=config.batch_per_task,
        )
        return state, {**metrics, "train/params_finite": all_finite(state.agent)}

    periodic = evaluation.episodes_per_env(eval_env.spec, config.eval_goals_per_task)
    final = evaluation.episodes_per_env(eval_env.spec, eval_env.spec.goals_per_task)

    def all_goals(episodes: int) -> Callable:
        on_round = evaluation.round_reporter(evaluation_progress, "eval", episodes)
        return functools.partial(
            evaluation.run_scored_episodes, eval_env, agent, num_episodes=episodes, on_round=on_round
        )

    fns = [init, warmup, train, all_goals(periodic), all_goals(final)]
    if moore_eval_env is not None:
        episodes = evaluation.sampled_episodes_per_env(moore_eval_env.spec, config.moore_eval_episodes)
        on_round = evaluation.round_reporter(evaluation_progress, "eval_moore", episodes)
        fns.append(
            functools.partial(
                evaluation.run_scored_episodes,
                moore_eval_env,
                agent,
                num_episodes=episodes,
                deterministic=False,
                on_round=on_round,
            )
        )
    if num_seeds > 1:  # training vmapped; each evaluation too where its env vmaps, else seed after seed
        played_in = [eval_env, eval_env, moore_eval_env][: len(fns) - 3]
        evaluations = [evaluation.over_seeds(fn, e) for fn, e in zip(fns[3:], played_in, strict=True)]
        fns = [jax.vmap(fn) for fn in fns[:3]] + evaluations
    programs = Programs(*(jax.jit(fn) for fn in fns))
    if periodic == final:  # one compiled evaluation serves both
        programs = dataclasses.replace(programs, final_evaluate=programs.evaluate)
    return programs


class Diverged(RuntimeError):
    """A loss, Q-value or parameter became NaN or infinite; the message names the step and the quantity."""


class Interrupted(RuntimeError):
    """The run was asked to stop (SIGINT/SIGTERM) and stopped after writing a checkpoint."""

    def __init__(self, step: int):
        super().__init__(f"stopped at step {step} after writing a checkpoint")
        self.step = step
        self.run_dir = None  # filled in by whoever knows where the checkpoint went


@dataclasses.dataclass(frozen=True)
class Start:
    """Where a resumed run picks up: the restored train state after `iteration` completed iterations."""

    state: offpolicy.OffPolicyState
    iteration: int


@dataclasses.dataclass
class Schedule:
    """Which iterations log, evaluate and checkpoint, and the training throughput between logs.

    Shared by the off-policy and the episodic loop, so that a run's rhythm, its throughput figure
    (evaluation time excluded) and its stop/checkpoint behaviour do not depend on the agent.
    """

    hooks: Hooks
    num_tasks: int
    steps_per_iteration: int  # env steps per task
    iterations: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    last_log_time: float
    last_log_step: int
    video_every: int = 0

    @classmethod
    def of(cls, config: LoopConfig, hooks: Hooks, spec: EnvSpec, steps_per_iteration: int, iterations: int,
           first: int) -> Schedule:  # fmt: skip
        every = functools.partial(_every, steps_per_iteration=steps_per_iteration)
        return cls(
            hooks, spec.num_tasks, steps_per_iteration, iterations,
            log_every=every(config.log_every_steps_per_task),
            eval_every=every(config.eval_every_steps_per_task),
            checkpoint_every=every(config.checkpoint_every_steps_per_task),
            last_log_time=time.perf_counter(), last_log_step=(first - 1) * steps_per_iteration,
            video_every=every(config.video_every_steps_per_task),
        )  # fmt: skip

    def total_steps(self, i: int) -> int:
        """Env steps over all tasks after iteration i: the step every metric is logged at."""
        return i * self.steps_per_iteration * self.num_tasks

    def logs(self, i: int) -> bool:
        return i % self.log_every == 0 or i == self.iterations

    def evaluates(self, i: int) -> bool:
        return i == self.iterations or bool(self.eval_every and i % self.eval_every == 0)

    def log_training(self, i: int, metrics: dict[str, float]) -> None:
        """Log `metrics` with the steps so far and the env steps per second since the last log."""
        step = i * self.steps_per_iteration
        elapsed = max(time.perf_counter() - self.last_log_time, 1e-9)
        metrics["env/steps_per_task"] = step
        metrics["env/steps_per_second"] = (step - self.last_log_step) * self.num_tasks / elapsed
        self._emit(i, metrics)
        self.last_log_time, self.last_log_step = time.perf_counter(), step

    def log_evaluation(self, i: int, metrics: dict[str, float]) -> None:
        metrics["env/steps_per_task"] = i * self.steps_per_iteration
        self._emit(i, metrics)

    @contextlib.contextmanager
    def untimed(self):
        """Keep what runs inside (evaluation) out of the training throughput."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.last_log_time += time.perf_counter() - start

    def end_iteration(self, i: int, state: Any) -> None:
        """Film when due; checkpoint when due, at the end, or on a stop request; then stop with `Interrupted`
        if asked."""
        final, stop = i == self.iterations, self.hooks.stop_requested()
        if self.video_every and (i % self.video_every == 0 or final):
            with self.untimed():
                self.hooks.video(self.total_steps(i), state)
        if final or stop or (self.checkpoint_every and i % self.checkpoint_every == 0):
            self.hooks.checkpoint(self.total_steps(i), state, i)
        if stop and not final:
            raise Interrupted(self.total_steps(i))

    def _emit(self, i: int, metrics: dict[str, float]) -> None:
        self.hooks.log(self.total_steps(i), metrics)
        self.hooks.progress(self.total_steps(i), metrics)


def train_state_template(
    env: Env, agent: Agent, config: LoopConfig, keys: jax.Array
) -> offpolicy.OffPolicyState:
    """The train state's structure, shapes and dtypes (nothing computed): what a checkpoint restores into."""
    num_seeds = keys.shape[0] if keys.ndim else 1
    init = functools.partial(offpolicy.init_state, env, agent, replay_capacity=config.replay_per_task)
    return jax.eval_shape(jax.vmap(init) if num_seeds > 1 else init, keys)


def train(
    env: Env,
    eval_env: Env,
    agent: Agent,
    config: LoopConfig,
    keys: jax.Array,
    *,
    hooks: Hooks | None = None,
    start: Start | None = None,
    moore_eval_env: Env | None = None,
) -> tuple[offpolicy.OffPolicyState, dict[str, float]]:
    """Train `agent` on `env`; returns the final state and the final evaluation's metrics.

    Every evaluation plays `eval_env` by the all-goals protocol and, with `moore_eval_env` (built with
    random goals), also the MOORE authors' protocol (`mtrl.evaluation`).

    `keys` is one PRNG key, or a 1-D array of keys to train that many seeds in one vmapped program
    (seed i then follows exactly the run a single key `keys[i]` would give). With `start`, training
    continues from a checkpointed state exactly as the uninterrupted run would have.

    After every iteration the loop checks losses and parameters: a NaN or infinity raises `Diverged`
    before anything of that iteration is logged or checkpointed. When `hooks.stop_requested()` turns
    true, the loop writes a checkpoint and raises `Interrupted`.
    """
    hooks = hooks or Hooks()
    spec = env.spec
    check_loop_config(config, spec.envs_per_task)
    num_seeds = keys.shape[0] if keys.ndim else 1
    if (moore_eval_env is None) != (config.moore_eval_episodes == 0):
        raise ValueError(
            f"loop.moore_eval_episodes={config.moore_eval_episodes} needs a MOORE-protocol eval env exactly "
            "when it is > 0"
        )
    programs = make_programs(
        env, eval_env, agent, config, num_seeds, moore_eval_env, hooks.evaluation_progress
    )
    sharding = devices.seed_sharding(num_seeds, env)  # vmapped seeds over every local device
    keys = devices.spread_seeds(keys, sharding)
    state = programs.init(keys) if start is None else devices.spread_seeds(start.state, sharding)
    first = 1 if start is None else start.iteration + 1

    steps_per_iteration = config.steps_per_iteration * spec.envs_per_task  # per task
    iterations = num_iterations(config, spec)
    warmup_iterations = -(-config.warmup_steps_per_task // steps_per_iteration)
    schedule = Schedule.of(config, hooks, spec, steps_per_iteration, iterations, first)

    def run_evaluation(i: int) -> dict[str, float]:
        with schedule.untimed():
            evaluate = programs.final_evaluate if i == iterations else programs.evaluate
            flags, returns = jax.device_get(evaluate(state.agent, _fold_in(keys, i)))
            metrics = evaluation.eval_metrics(eval_env.spec, flags, returns=returns)
            if programs.moore_evaluate is not None:
                played = programs.moore_evaluate(state.agent, _fold_in(_fold_in(keys, i), 1))
                flags, returns = jax.device_get(played)
                metrics |= evaluation.eval_metrics(moore_eval_env.spec, flags, "eval_moore", returns)
            schedule.log_evaluation(i, metrics)
        return metrics

    update_metrics: dict[str, Any] = {}
    eval_metrics: dict[str, float] = {}
    if config.eval_before_training and start is None:
        run_evaluation(0)
    for i in range(first, iterations + 1):
        if i <= warmup_iterations:
            state = programs.warmup(state)
        else:
            state, update_metrics = programs.train(state)
            update_metrics = jax.device_get(update_metrics)
            check_finite(update_metrics, schedule.total_steps(i))
        if schedule.logs(i):
            schedule.log_training(i, _train_metrics(state, update_metrics, spec))
            state = state.replace(stats=state.stats.clear_totals())
        if schedule.evaluates(i):
            eval_metrics = run_evaluation(i)
        schedule.end_iteration(i, state)
    return state, eval_metrics


def num_iterations(config: LoopConfig, spec: EnvSpec) -> int:
    """Collect/learn iterations of a whole run (the last may overshoot the budget by part of one)."""
    return -(-config.steps_per_task // (config.steps_per_iteration * spec.envs_per_task))


def check_finite(metrics: dict[str, Any], step: int) -> None:
    """Raise `Diverged` naming the first NaN/infinite metric (losses, Q-values, `params_finite`)."""
    for name, value in metrics.items():
        if not np.all(np.isfinite(value)) or (name == "train/params_finite" and not np.all(value == 1)):
            quantity = "agent parameters" if name == "train/params_finite" else name
            raise Diverged(
                f"training diverged at step {step}: {quantity} became NaN or infinite; "
                "the run stopped and its last good checkpoint is kept"
            )


def _fold_in(keys: jax.Array, data: int) -> jax.Array:
    if keys.ndim:
        return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, data)
    return jax.random.fold_in(keys, data)


def _every(steps_per_task: int, steps_per_iteration: int) -> int:
    return max(1, round(steps_per_task / steps_per_iteration)) if steps_per_task > 0 else 0


def _train_metrics(
    state: offpolicy.OffPolicyState, update_metrics: dict[str, Any], spec: EnvSpec
) -> dict[str, float]:
    """Losses averaged over the iteration; success, return and simulator instabilities since the last log.

    `env/unstable_steps` counts env steps on which MuJoCo found the simulation unstable and reset it
    (never fatal: the env goes on, as metaworld's does); tasks where that happened get their own count.
    """
    stats = jax.device_get(state.stats)
    episodes = float(np.sum(stats.episodes))
    metrics = {k: float(np.mean(v)) for k, v in jax.device_get(update_metrics).items()}
    if episodes:
        metrics["train/success"] = float(np.sum(stats.successes)) / episodes
        metrics["train/episode_return"] = float(np.sum(stats.returns)) / episodes
    unstable = (
        np.asarray(stats.unstable_steps).reshape(-1, spec.num_tasks, spec.envs_per_task).sum(axis=(0, 2))
    )
    metrics["env/unstable_steps"] = float(unstable.sum())
    for task, count in zip(spec.task_names, unstable, strict=True):
        if count:
            metrics[f"env/{task}/unstable_steps"] = float(count)
    return metrics
