"""The host loop of agents that collect their own episodes: MT-PPO, MAML, RL² and PEARL.

One iteration is the agent's jitted `train_iteration(env, agent_state, key)`: it resets the env, plays whole
episodes in lockstep (each env holding its goal for the agent's `episodes_per_goal` episodes) and updates.
The env state therefore never outlives an iteration, and the train state is the agent state alone; iteration
`i` draws its key from the run key and `i`, so a resumed run repeats exactly what the uninterrupted one does.

Evaluation follows the agent's kind: a multi-task agent (MT-PPO, the MiniGrid PPO agents) plays every goal
of every task deterministically, as in the off-policy loop (`mtrl.evaluation`), and with
`moore_eval_episodes` also the MOORE authors' sampled protocol (`eval_moore/*`), each with success and
return (on MiniGrid the return is their metric); a meta-RL agent (with `adapt`) is scored by
the held-out protocol (`mtrl.meta_evaluation`) on the test split (`meta_test/*`, the number the Meta-World
paper reports) and on the train split (`meta_train/*`). Periodic evaluations visit `eval_goals_per_task`
goals per task; the final one visits every test goal (meta-train stays at `eval_goals_per_task`: on ML45 all
50 goals of the 45 train tasks would cost ~15M env steps).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mtrl import devices, evaluation
from mtrl.meta_evaluation import MetaAgent, make_meta_evaluator, meta_metrics
from mtrl.training import (
    Hooks,
    LoopConfig,
    Schedule,
    Start,
    _fold_in,
    all_finite,
    check_finite,
    check_loop_config,
)
from mtrl.types import Agent, Env, EnvSpec, PyTree


class EpisodicAgent(NamedTuple):
    """An episodic agent's functions with its config bound (see the agent modules' contract)."""

    name: str
    init: Callable  # (key, spec) -> state
    train_iteration: Callable  # (env, state, key) -> (state, metrics)
    vector_steps: Callable  # (spec) -> env.step calls per iteration
    episodes_per_goal: int
    """Consecutive episodes each training env plays on one goal (MAML: pre + post adaptation)."""
    act: Callable | None  # multi-task agents: (state, obs, task_id, key, deterministic) -> action
    meta: MetaAgent | None  # meta-RL agents: init_adaptation, act, adapt


class EvalEnvs(NamedTuple):
    """Where an episodic agent is evaluated: the MT eval env, or the ML test and train splits."""

    test: Env
    train: Env | None = None
    """The train split for meta-train success (meta-RL agents only)."""


@struct.dataclass
class EpisodicState:
    """The whole train state: the agent's (params, optimiser states, baselines, PEARL's replay) and the sums
    of the per-iteration metrics since the last log, so that a resumed run logs the same means."""

    agent: PyTree
    iterations: jax.Array
    """Iterations completed."""
    metric_sums: dict[str, jax.Array]
    window: jax.Array
    """Iterations summed in `metric_sums`."""


def iteration_steps_per_task(agent: EpisodicAgent, spec: EnvSpec) -> int:
    """Env steps per task that one iteration plays."""
    return agent.vector_steps(spec) * spec.envs_per_task


def num_iterations(config: LoopConfig, agent: EpisodicAgent, spec: EnvSpec) -> int:
    """Iterations of a whole run (the last may overshoot the budget by part of one)."""
    return -(-config.steps_per_task // iteration_steps_per_task(agent, spec))


def train_state_template(env: Env, agent: EpisodicAgent, keys: jax.Array) -> EpisodicState:
    """The train state's structure (nothing computed): what a checkpoint restores into."""
    init = functools.partial(_init, env, agent)
    return jax.eval_shape(jax.vmap(init) if keys.ndim else init, keys)


def initial_state(env: Env, agent: EpisodicAgent, keys: jax.Array) -> EpisodicState:
    """The train state `train` starts from when not given one: one per key of a 1-D `keys`."""
    init = functools.partial(_init, env, agent)
    return jax.jit(jax.vmap(init) if keys.ndim else init)(keys)


def _iteration(env: Env, agent: EpisodicAgent, agent_state: PyTree, iterations: jax.Array, key: jax.Array):
    """One training iteration of the agent with the key of iteration `iterations` of the run key `key`."""
    train_key = jax.random.split(key, 3)[1]
    agent_state, metrics = agent.train_iteration(env, agent_state, jax.random.fold_in(train_key, iterations))
    return agent_state, {**metrics, "train/params_finite": all_finite(agent_state)}


def _init(env: Env, agent: EpisodicAgent, key: jax.Array) -> EpisodicState:
    init_key = jax.random.split(key, 3)[0]
    agent_state = agent.init(init_key, env.spec)
    iterations = jnp.zeros((), jnp.int32)
    shapes = jax.eval_shape(functools.partial(_iteration, env, agent), agent_state, iterations, key)[1]
    sums = {name: jnp.zeros(shape.shape, jnp.float32) for name, shape in shapes.items()}
    return EpisodicState(agent_state, iterations, sums, jnp.zeros((), jnp.int32))


def _iterate(env: Env, agent: EpisodicAgent, state: EpisodicState, key: jax.Array):
    agent_state, metrics = _iteration(env, agent, state.agent, state.iterations, key)
    sums = {name: total + metrics[name] for name, total in state.metric_sums.items()}
    state = EpisodicState(agent_state, state.iterations + 1, sums, state.window + 1)
    return state, metrics


def _take_means(state: EpisodicState) -> tuple[EpisodicState, dict[str, float]]:
    """The metrics' means since the last log (over iterations, and over seeds), and the state reset."""
    sums, window = jax.device_get((state.metric_sums, state.window))
    means = {name: float(np.mean(np.asarray(total) / np.asarray(window))) for name, total in sums.items()}
    cleared = jax.tree.map(jnp.zeros_like, (state.metric_sums, state.window))
    return state.replace(metric_sums=cleared[0], window=cleared[1]), means


class Evaluator(NamedTuple):
    periodic: Callable  # (agent_state, key) -> metrics
    final: Callable


def make_evaluator(
    eval_envs: EvalEnvs,
    agent: EpisodicAgent,
    config: LoopConfig,
    num_seeds: int,
    evaluation_progress: Callable[[str, int, int], None] | None = None,
) -> Evaluator:
    """Build (and validate) the evaluations; each compiles on its first use. `evaluation_progress` follows
    the multi-task agents' evaluations (`Hooks.evaluation_progress`)."""
    seeds = num_seeds > 1
    if agent.meta is None:
        env = eval_envs.test
        mt_agent = Agent(name=agent.name, init=None, act=agent.act, update=None)

        def protocol(episodes: int, deterministic: bool, prefix: str) -> Callable:
            play = functools.partial(
                evaluation.run_scored_episodes,
                env,
                mt_agent,
                num_episodes=episodes,
                deterministic=deterministic,
                on_round=evaluation.round_reporter(evaluation_progress, prefix, episodes),
            )
            if seeds:
                play = evaluation.over_seeds(play, env)
            play = jax.jit(play)

            def evaluate(state, key):
                successes, returns = jax.device_get(play(state, key))
                return evaluation.eval_metrics(env.spec, successes, prefix=prefix, returns=returns)

            return evaluate

        def mt(goals: int) -> Callable:
            all_goals = protocol(evaluation.episodes_per_env(env.spec, goals), True, "eval")
            if not config.moore_eval_episodes:
                return all_goals
            episodes = evaluation.sampled_episodes_per_env(env.spec, config.moore_eval_episodes)
            moore = protocol(episodes, False, "eval_moore")
            return lambda state, key: {**all_goals(state, key), **moore(state, _fold_in(key, 2))}

        periodic = mt(config.eval_goals_per_task)
        final = evaluation.final_goals(env.spec, config.eval_goals_per_task)
        if final == config.eval_goals_per_task:  # procedural envs: one program, not two of the same
            return Evaluator(periodic, periodic)
        return Evaluator(periodic, mt(final))

    protocol = {
        "adaptation_episodes": config.meta_adaptation_episodes,
        "scored_episodes": config.meta_scored_episodes,
        "seeds": seeds,
    }

    def meta(env: Env, goals: int, prefix: str) -> Callable:
        evaluate = make_meta_evaluator(env, agent.meta, goals=goals, **protocol)
        return lambda state, key: meta_metrics(env.spec, evaluate(state, key), prefix=prefix)

    goals = config.eval_goals_per_task
    test_periodic = meta(eval_envs.test, goals, "meta_test")
    test_final = meta(eval_envs.test, eval_envs.test.spec.goals_per_task, "meta_test")
    train_split = meta(eval_envs.train, goals, "meta_train") if eval_envs.train is not None else None

    def both(test: Callable) -> Callable:
        def evaluate(state, key):
            metrics = test(state, key)
            if train_split is not None:
                metrics.update(train_split(state, _fold_in(key, 1)))
            return metrics

        return evaluate

    return Evaluator(both(test_periodic), both(test_final))


def train(
    env: Env,
    eval_envs: EvalEnvs,
    agent: EpisodicAgent,
    config: LoopConfig,
    keys: jax.Array,
    *,
    hooks: Hooks | None = None,
    start: Start | None = None,
) -> tuple[EpisodicState, dict[str, float]]:
    """Train `agent` on `env`; returns the final state and the final evaluation's metrics.

    `keys`: one PRNG key, or a 1-D array of keys to train that many seeds in one vmapped program (pure-JAX
    envs only). Divergence, stop requests and checkpoints behave as in `mtrl.training.train`.
    """
    hooks = hooks or Hooks()
    spec = env.spec
    check_loop_config(config, spec.envs_per_task)
    num_seeds = keys.shape[0] if keys.ndim else 1
    if num_seeds > 1 and not env.vmappable:
        raise ValueError(
            f"num_seeds={num_seeds} needs an env that vmaps over seeds (pure JAX, or Meta-World's native "
            f"backend built for {num_seeds} seeds); this {spec.name} env steps on the host (run one seed "
            "per process instead)"
        )

    init = functools.partial(_init, env, agent)
    iterate = functools.partial(_iterate, env, agent)
    init, iterate = (jax.vmap(init), jax.vmap(iterate)) if num_seeds > 1 else (init, iterate)
    init, iterate = jax.jit(init), jax.jit(iterate)
    evaluator = make_evaluator(eval_envs, agent, config, num_seeds, hooks.evaluation_progress)
    eval_keys = jax.vmap(_eval_key)(keys) if num_seeds > 1 else _eval_key(keys)

    sharding = devices.seed_sharding(num_seeds, env)  # vmapped seeds over every local device
    keys = devices.spread_seeds(keys, sharding)
    state = init(keys) if start is None else devices.spread_seeds(start.state, sharding)
    first = 1 if start is None else start.iteration + 1
    steps_per_iteration = iteration_steps_per_task(agent, spec)
    iterations = num_iterations(config, agent, spec)
    schedule = Schedule.of(config, hooks, spec, steps_per_iteration, iterations, first)

    eval_metrics: dict[str, float] = {}
    if config.eval_before_training and start is None:
        with schedule.untimed():
            schedule.log_evaluation(0, evaluator.periodic(state.agent, _fold_in(eval_keys, 0)))
    for i in range(first, iterations + 1):
        state, metrics = iterate(state, keys)
        check_finite(jax.device_get(metrics), schedule.total_steps(i))
        if schedule.logs(i):
            state, logged = _take_means(state)
            schedule.log_training(i, logged)
        if schedule.evaluates(i):
            with schedule.untimed():
                evaluate = evaluator.final if i == iterations else evaluator.periodic
                eval_metrics = evaluate(state.agent, _fold_in(eval_keys, i))
                schedule.log_evaluation(i, eval_metrics)
        schedule.end_iteration(i, state)
    return state, eval_metrics


def _eval_key(key: jax.Array) -> jax.Array:
    return jax.random.split(key, 3)[2]
