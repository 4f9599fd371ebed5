"""A training run end to end: envs and agent from the config, run directory, logging, checkpoints,
progress, and the final tables and plots. `mtrl.app.resume` continues one that stopped."""

from __future__ import annotations

import dataclasses
import signal

import jax
import numpy as np
from rich.console import Console

from mtrl import checkpoint, devices, episodic_training, resources, training
from mtrl.agents import moore_ppo
from mtrl.app import transfer, videos, wiring
from mtrl.app.config import TrainConfig, to_json
from mtrl.app.progress import TrainingProgress
from mtrl.app.results import RunResult, finish
from mtrl.app.run_dir import create_run_dir, exclusive, package_versions, write_json
from mtrl.app.signals import StopSignals
from mtrl.logger import RunLogger


def train(config: TrainConfig, console: Console | None = None) -> RunResult:
    """Train as `config` says, writing everything into a new run directory."""
    console = console or Console()
    if config.loop.video_every_steps_per_task:
        videos.check_filmable(config)  # before MuJoCo is imported (headless GL) and a run dir exists
    train_env, eval_env = wiring.make_envs(config)
    check_memory(config, train_env.spec)
    start = transfer_start(config, train_env)  # reads the source run before anything is written
    run_dir = create_run_dir(config)
    config = wiring.with_backend(dataclasses.replace(config, run_dir=run_dir))
    write_json(run_dir / "config.json", to_json(config))
    write_json(run_dir / "spec.json", train_env.spec.to_dict())
    write_json(run_dir / "versions.json", package_versions())
    console.print(f"run directory: {run_dir}")
    with exclusive(run_dir):
        return run_training(config, run_dir, train_env, eval_env, console, start=start)


def transfer_start(config: TrainConfig, train_env) -> training.Start | None:
    """A transfer run (`--agent.experts-from RUN_DIR`) starts from its initial state with the source run's
    expert CNNs in place; every other run starts from `init`."""
    if not wiring.traits(config.agent_name).expert_transfer or config.agent.experts_from is None:
        return None
    actor, critic = transfer.source_experts(config)
    state = episodic_training.initial_state(train_env, wiring.make_agent(config), seed_keys(config))
    with_experts = jax.vmap(moore_ppo.with_experts) if config.num_seeds > 1 else moore_ppo.with_experts
    return training.Start(state.replace(agent=with_experts(state.agent, actor, critic)), 0)


def run_training(config, run_dir, train_env, eval_env, console, start=None, metrics_bytes=None) -> RunResult:
    """The training proper, shared by a new run and a resumed one."""
    agent = wiring.make_agent(config)
    spec = train_env.spec
    wandb_config = {**to_json(config), "versions": package_versions()}
    logger = RunLogger(run_dir, wandb_config, config.wandb, name=run_dir.name, resume_at=metrics_bytes)
    checkpointer = checkpoint.Checkpointer(run_dir)

    def save(step: int, state, iteration: int) -> None:
        loop = {"iteration": iteration, "metrics_bytes": logger.position, "devices": devices.spanned(state)}
        checkpointer.save(step, state, loop=loop, host=train_env.host_state())

    filmer = videos.Filmer(config) if config.loop.video_every_steps_per_task else None
    if filmer is not None:
        filmer.env()  # an env without a renderer, or a meta-RL agent, is refused before training starts

    def film(step: int, state) -> None:
        out, recordings = filmer.film(state.agent, run_dir, step)  # both loops keep the agent as `.agent`
        logger.log_videos(step, videos.wandb_videos(out, recordings))

    total = config.loop.steps_per_task * spec.num_tasks
    done = 0 if start is None else start.iteration * config.loop.steps_per_iteration * spec.num_envs
    try:
        with stop_on_signal(console) as stop, TrainingProgress(total, console, done=done) as progress:
            hooks = training.Hooks(
                log=logger.log,
                checkpoint=save,
                progress=progress.update,
                stop_requested=stop.requested,
                video=film,  # called only when video_every_steps_per_task > 0, i.e. with a filmer
                evaluation_progress=progress.evaluation if progress.live else None,
            )
            loop = wiring.loop_module(config)
            moore_env = wiring.make_moore_eval_env(config)
            extra = {} if moore_env is None else {"moore_eval_env": moore_env}
            _, final = loop.train(
                train_env, eval_env, agent, config.loop, seed_keys(config), hooks=hooks, start=start, **extra
            )
    except training.Interrupted as stopped:
        stopped.run_dir = run_dir
        raise
    finally:
        logger.close()
        checkpointer.close()
        if filmer is not None:
            filmer.close()
    return finish(run_dir, final, console, title="Final evaluation")


def check_memory(config: TrainConfig, spec) -> None:
    """Replay must fit in memory (off-policy agents; episodic agents size their own buffers)."""
    if not wiring.is_episodic(config.agent_name):
        resources.check_replay_fits(spec, config.loop.replay_per_task, config.num_seeds)


def seed_keys(config: TrainConfig) -> jax.Array:
    """One PRNG key per seed of the run (a single key for one seed)."""
    seeds = [config.seed + i for i in range(config.num_seeds)]
    return jax.random.key(seeds[0]) if len(seeds) == 1 else jax.vmap(jax.random.key)(np.array(seeds))


def stop_on_signal(console: Console) -> StopSignals:
    """The first SIGINT/SIGTERM asks the loop to stop after this iteration and a checkpoint; a second
    SIGINT aborts at once."""

    def on_signal(signum: int, count: int) -> None:
        if count > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if count == 1:
            console.print(
                f"{signal.Signals(signum).name}: stopping after this iteration and writing a checkpoint "
                "(Ctrl-C again aborts)"
            )

    return StopSignals(on_signal)
