"""Wiring: turn a `TrainConfig` into the envs and the bound agent that a core loop runs.

Two loops exist: `mtrl.training` (off-policy, replay: the SAC family) and `mtrl.episodic_training` (agents
that collect their own episodes: MT-PPO, and the meta-RL agents MAML, RL², PEARL). Which loop, and whether an
agent is meta-RL (trained on ML benchmarks, evaluated on held-out goals/tasks) or acts discretely (MiniGrid),
is what its module declares in `TRAITS` (`mtrl.types.AgentTraits`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax

from mtrl import envs, episodic_training, task_text, training
from mtrl.agents import AGENTS, get_agent, task_encoders
from mtrl.app.config import EnvConfig, TrainConfig
from mtrl.episodic_training import EpisodicAgent, EvalEnvs
from mtrl.meta_evaluation import MetaAgent
from mtrl.training import check_loop_config
from mtrl.types import Agent, AgentTraits, Env, EnvSpec

MINIGRID_BENCHMARKS = envs.MINIGRID_BENCHMARKS
MT_BENCHMARKS = ("toy", "MT1", "MT10", "MT25", "MT50", *MINIGRID_BENCHMARKS)
META_BENCHMARKS = ("toy-ml", "ML1", "ML10", "ML25", "ML45")
VMAPPING_BACKENDS = ("jax", "native")  # env backends that train several seeds in one vmapped program


def traits(agent_name: str) -> AgentTraits:
    """What the agent called `agent_name` declares about itself."""
    return get_agent(agent_name).TRAITS


def is_episodic(agent_name: str) -> bool:
    """Whether the agent collects its own episodes (`mtrl.episodic_training`) rather than using replay."""
    return traits(agent_name).loop == "episodic"


def is_meta(agent_name: str) -> bool:
    """Whether the agent adapts to a new task or goal (MAML, RL², PEARL)."""
    return traits(agent_name).meta


def meta_agent_names() -> tuple[str, ...]:
    return tuple(name for name in AGENTS if is_meta(name))


def make_env(
    env_config: EnvConfig,
    seed: int,
    *,
    envs_per_task: int,
    goal_sampling: str = "random",
    episodes_per_goal: int = 1,
    split: str = "train",
    seeds: int = 1,
) -> Env:
    """The configured benchmark with `envs_per_task` envs per task, for `seeds` vmapped seeds."""
    return envs.make(
        env_config.name,
        task=env_config.task,
        split=split,
        backend=env_config.backend,
        seed=seed,
        envs_per_task=envs_per_task,
        goal_sampling=goal_sampling,
        episodes_per_goal=episodes_per_goal,
        num_tasks=env_config.toy_num_tasks if env_config.name == "toy" else None,
        reward_version=env_config.reward_version,
        max_episode_steps=env_config.max_episode_steps,
        seeds=seeds,
    )


def make_envs(config: TrainConfig) -> tuple[Env, Env | EvalEnvs]:
    """Training env (random goals) and where the agent is evaluated (every goal once, in turn).

    The training env is built for the run's seeds (Meta-World native: a copy of the batch per vmapped seed);
    evaluation envs for one seed: on host backends the seeds then play one after another, so that an
    evaluation of 10 envs per task does not hold 10 × tasks × seeds simulators."""
    check_trainable(config)
    episodes_per_goal = make_agent(config).episodes_per_goal if is_episodic(config.agent_name) else 1
    train_env = make_env(
        config.env,
        config.seed,
        envs_per_task=config.env.envs_per_task,
        episodes_per_goal=episodes_per_goal,
        seeds=config.num_seeds,
    )
    return train_env, make_eval_env(config)


def make_eval_env(config: TrainConfig) -> Env | EvalEnvs:
    """Evaluation envs, `eval_envs_per_task` envs per task playing every goal in turn: one env for
    multi-task agents (`EvalEnvs` for episodic ones), the test and train splits for meta-RL agents."""
    if not is_meta(config.agent_name):
        env = make_env(
            config.env,
            config.seed,
            envs_per_task=config.loop.eval_envs_per_task,
            goal_sampling="sequential",
        )
        return EvalEnvs(test=env) if is_episodic(config.agent_name) else env
    per_goal = config.loop.meta_adaptation_episodes + config.loop.meta_scored_episodes
    test, train = (
        make_env(
            config.env,
            config.seed,
            envs_per_task=config.loop.eval_envs_per_task,
            goal_sampling="sequential",
            episodes_per_goal=per_goal,
            split=split,
        )
        for split in ("test", "train")
    )
    return EvalEnvs(test=test, train=train)


def make_moore_eval_env(config: TrainConfig) -> Env | None:
    """The env of the MOORE authors' evaluation protocol (random goals), when the loop asks for it.

    Its envs per task are the largest count that divides both `eval_envs_per_task` and the episodes per task,
    so each env plays the same number of episodes.
    """
    if not config.loop.moore_eval_episodes or is_episodic(config.agent_name):
        return None  # episodic agents evaluate by their own loop's protocols
    envs_per_task = math.gcd(config.loop.eval_envs_per_task, config.loop.moore_eval_episodes)
    return make_env(config.env, config.seed, envs_per_task=envs_per_task, goal_sampling="random")


def make_agent(config: TrainConfig) -> Agent | EpisodicAgent:
    """The agent's pure functions with its config bound (and its wired fields filled at `init`)."""
    module = get_agent(config.agent_name)

    def init(key: jax.Array, spec: EnvSpec):
        return module.init(key, spec, config=agent_config(config, spec))

    if not is_episodic(config.agent_name):
        return Agent(name=config.agent_name, init=init, act=module.act, update=module.update)
    meta = None
    if is_meta(config.agent_name):
        meta = MetaAgent(config.agent_name, module.init_adaptation, module.act, module.adapt)
    return EpisodicAgent(
        name=config.agent_name,
        init=init,
        train_iteration=module.train_iteration,
        vector_steps=functools.partial(module.vector_steps_per_iteration, config=config.agent),
        episodes_per_goal=module.episodes_per_goal(config.agent),
        act=None if meta else module.act,
        meta=meta,
    )


def agent_config(config: TrainConfig, spec: EnvSpec):
    """The agent's config with its wired fields filled: for text task embeddings (CARE, Hyper), the
    `[num_tasks, dim]` table of `spec`'s tasks, read from the run directory's copy (copied there from the
    user cache on first use, computed once if neither has it), so the run keeps what it trained with."""
    agent = config.agent
    if "task_table" in traits(config.agent_name).wired_fields and agent.task_embedding == "text":
        table = task_text.text_embeddings(spec.task_names, run_dir=config.run_dir)
        agent = dataclasses.replace(agent, task_table=task_encoders.as_table(table))
    return agent


def loop_module(config: TrainConfig):
    """The core loop that trains this agent: `mtrl.training` or `mtrl.episodic_training`."""
    return episodic_training if is_episodic(config.agent_name) else training


def num_iterations(config: TrainConfig, spec: EnvSpec) -> int:
    """Iterations of the whole run in the agent's loop."""
    if is_episodic(config.agent_name):
        return episodic_training.num_iterations(config.loop, make_agent(config), spec)
    return training.num_iterations(config.loop, spec)


def steps_per_iteration(config: TrainConfig, spec: EnvSpec) -> int:
    """Env steps per task that one iteration of the agent's loop plays."""
    if is_episodic(config.agent_name):
        return episodic_training.iteration_steps_per_task(make_agent(config), spec)
    return config.loop.steps_per_iteration * spec.envs_per_task


def final_step(config: TrainConfig, spec: EnvSpec) -> int:
    """The step of a finished run's last checkpoint (env steps over all tasks, as checkpoints count them)."""
    return num_iterations(config, spec) * steps_per_iteration(config, spec) * spec.num_tasks


def train_state_template(config: TrainConfig, env: Env, keys):
    """The train state's structure in the agent's loop (what `--resume` restores into)."""
    if is_episodic(config.agent_name):
        return episodic_training.train_state_template(env, make_agent(config), keys)
    return training.train_state_template(env, make_agent(config), config.loop, keys)


def check_compatible(config: TrainConfig) -> None:
    """Refuse combinations that cannot train, before anything is built."""
    name = config.env.name
    if name not in envs.ENV_NAMES:
        raise ValueError(f"unknown env {name!r}; valid names: {', '.join(envs.ENV_NAMES)}")
    if is_meta(config.agent_name) and name not in META_BENCHMARKS:
        raise ValueError(
            f"{config.agent_name} is a meta-RL agent and {name} a multi-task benchmark; meta-RL agents "
            f"train on {', '.join(META_BENCHMARKS)}"
        )
    if not is_meta(config.agent_name) and name not in MT_BENCHMARKS:
        raise ValueError(
            f"{name} is a meta-RL benchmark and {config.agent_name} is a multi-task agent; "
            f"multi-task agents train on {', '.join(MT_BENCHMARKS)}"
        )
    discrete_agent = traits(config.agent_name).discrete_actions
    if discrete_agent != (name in MINIGRID_BENCHMARKS):
        valid = (
            MINIGRID_BENCHMARKS
            if discrete_agent
            else tuple(n for n in MT_BENCHMARKS if n not in MINIGRID_BENCHMARKS)
        )
        raise ValueError(
            f"{config.agent_name} cannot train on {name}: its actions are "
            f"{'discrete' if discrete_agent else 'continuous'}; valid envs: {', '.join(valid)}"
        )
    if config.num_seeds < 1:
        raise ValueError(f"num_seeds must be >= 1, got {config.num_seeds}")
    if config.env.envs_per_task < 1:
        raise ValueError(f"env.envs_per_task must be >= 1, got {config.env.envs_per_task}")
    check_loop_config(config.loop, config.env.envs_per_task)
    transfers = traits(config.agent_name).expert_transfer
    if transfers and config.agent.frozen_experts and config.agent.experts_from is None:
        raise ValueError(
            "agent.frozen_experts freezes the expert CNNs, so they must come from a source run: give "
            "--agent.experts-from RUN_DIR (or --agent.no-frozen-experts to train them from scratch)"
        )
    if is_meta(config.agent_name):  # RL²: meta-test must stay within the trial length it trained on
        get_agent(config.agent_name).check_meta_protocol(config.agent, config.loop.meta_adaptation_episodes)


def check_trainable(config: TrainConfig) -> None:
    """`check_compatible`, plus what only training needs: several seeds in one program need an env that
    vmaps over seeds (evaluating a many-seed checkpoint on another host backend is fine: the seeds then play
    one after another)."""
    check_compatible(config)
    if config.num_seeds > 1 and not vmaps_seeds(config):
        vmapping = [b for b in envs.BACKENDS[config.env.name] if b in VMAPPING_BACKENDS]
        raise ValueError(
            f"--num-seeds {config.num_seeds} trains the seeds in one vmapped program, which the "
            f"{backend_of(config)} backend of {config.env.name} cannot (it steps on the host one seed at a "
            f"time): train one seed per process (mtrl sweep does) or use --env.backend {vmapping[0]}"
        )


def backend_of(config: TrainConfig) -> str:
    """The env backend the run uses (the benchmark's default when none is given)."""
    return config.env.backend or envs.BACKENDS[config.env.name][0]


def with_backend(config: TrainConfig) -> TrainConfig:
    """`config` with its env backend named, as a run records it: a default (None) would change meaning
    when the default does (Meta-World's went from official to native on 2026-12-05)."""
    return dataclasses.replace(config, env=dataclasses.replace(config.env, backend=backend_of(config)))


def vmaps_seeds(config: TrainConfig) -> bool:
    """Whether seeds of `config` can train in one vmapped program: on pure-JAX backends (toy, MiniGrid) and
    on Meta-World's native backend (one host call steps every seed's copy of the batch)."""
    return backend_of(config) in VMAPPING_BACKENDS


def agent_template(config: TrainConfig, spec: EnvSpec):
    """The run's agent state as shapes and dtypes (the train spec's), to restore a checkpoint into.

    Abstract, not initialised: an eager init compiles every parameter initialiser on its own (13 programs,
    ~7 s for a MiniGrid MOORE agent), all for values the checkpoint overwrites."""
    agent = make_agent(config)
    if config.num_seeds > 1:
        keys = jax.random.split(jax.random.key(0), config.num_seeds)
        return jax.eval_shape(jax.vmap(lambda key: agent.init(key, spec)), keys)
    return jax.eval_shape(lambda key: agent.init(key, spec), jax.random.key(0))
