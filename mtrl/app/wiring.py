"""Wiring: turn a `TrainConfig` into the env, eval env and bound agent that the core loop runs."""

from __future__ import annotations

import functools

import jax

from mtrl import envs
from mtrl.agents import get_agent
from mtrl.app.config import EnvConfig, TrainConfig
from mtrl.training import check_loop_config
from mtrl.types import Agent, Env, EnvSpec

MT_BENCHMARKS = ("toy", "MT1", "MT10", "MT25", "MT50")


def make_env(env_config: EnvConfig, seed: int, *, envs_per_task: int, goal_sampling: str = "random") -> Env:
    """The configured benchmark with `envs_per_task` envs per task."""
    return envs.make(
        env_config.name,
        task=env_config.task,
        backend=env_config.backend,
        seed=seed,
        envs_per_task=envs_per_task,
        goal_sampling=goal_sampling,
        num_tasks=env_config.toy_num_tasks if env_config.name == "toy" else None,
        reward_version=env_config.reward_version,
    )


def make_envs(config: TrainConfig) -> tuple[Env, Env]:
    """Training env (random goals) and evaluation env (every goal once, in turn)."""
    check_compatible(config)
    train_env = make_env(config.env, config.seed, envs_per_task=config.env.envs_per_task)
    return train_env, make_eval_env(config)


def make_eval_env(config: TrainConfig) -> Env:
    """The evaluation env: `eval_envs_per_task` envs per task playing every goal in turn."""
    return make_env(
        config.env, config.seed, envs_per_task=config.loop.eval_envs_per_task, goal_sampling="sequential"
    )


def make_agent(config: TrainConfig) -> Agent:
    """The agent's pure functions with its config bound."""
    module = get_agent(config.agent_name)
    return Agent(
        name=config.agent_name,
        init=functools.partial(module.init, config=config.agent),
        act=module.act,
        update=module.update,
    )


def check_compatible(config: TrainConfig) -> None:
    """Refuse combinations that cannot train, before anything is built."""
    if config.env.name not in envs.ENV_NAMES:
        raise ValueError(f"unknown env {config.env.name!r}; valid names: {', '.join(envs.ENV_NAMES)}")
    if config.env.name not in MT_BENCHMARKS:
        raise ValueError(
            f"{config.env.name} is a meta-RL benchmark and {config.agent_name} is a multi-task agent; "
            f"multi-task agents train on {', '.join(MT_BENCHMARKS)}"
        )
    if config.num_seeds < 1:
        raise ValueError(f"num_seeds must be >= 1, got {config.num_seeds}")
    if config.env.envs_per_task < 1:
        raise ValueError(f"env.envs_per_task must be >= 1, got {config.env.envs_per_task}")
    check_loop_config(config.loop, config.env.envs_per_task)


def agent_template(config: TrainConfig, spec: EnvSpec):
    """An agent state with the run's structure, to restore a checkpoint into."""
    agent = make_agent(config)
    if config.num_seeds > 1:
        keys = jax.random.split(jax.random.key(0), config.num_seeds)
        return jax.vmap(lambda key: agent.init(key, spec))(keys)
    return agent.init(jax.random.key(0), spec)
