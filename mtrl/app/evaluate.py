"""`mtrl evaluate RUN_DIR`: score a run's newest checkpoint again, by its own protocol or another one, on
its own env backend or another backend of the same benchmark; with `--video`, film it instead."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import jax
import numpy as np
from rich.console import Console

from mtrl import checkpoint, envs, episodic_training, evaluation
from mtrl.app import wiring
from mtrl.app.config import TrainConfig, load_run_config
from mtrl.app.progress import TrainingProgress
from mtrl.app.results import RunResult, finish
from mtrl.app.run_dir import write_json
from mtrl.app.videos import Filmer, VideoRequest, print_recordings, wandb_videos
from mtrl.logger import log_videos_to_run
from mtrl.types import EnvSpec

PROTOCOLS = ("all-goals", "moore", "meta")
MOORE_EVAL_EPISODES = 10  # the MOORE authors' --n_episodes_test, for `--protocol moore` on any MT run


def evaluate_run(
    run_dir: Path, console: Console | None = None, protocol: str | None = None, backend: str | None = None
) -> RunResult:
    """Re-evaluate the newest checkpoint of `run_dir`: every goal of every task for multi-task agents,
    the held-out adapt-then-score protocol for meta-RL agents (`protocol` may only name the agent's own),
    on the run's env backend or on `backend` (another backend of the same benchmark)."""
    console = console or Console()
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if backend is not None:
        valid = envs.BACKENDS[config.env.name]
        if backend not in valid:
            raise ValueError(f"unknown backend {backend!r} for {config.env.name}; valid: {', '.join(valid)}")
        config = dataclasses.replace(config, env=dataclasses.replace(config.env, backend=backend))
    wiring.check_compatible(config)
    check_protocol(config.agent_name, protocol)
    eval_env = wiring.make_eval_env(config)
    train_spec = EnvSpec.from_dict(json.loads((run_dir / "spec.json").read_text()))
    step = checkpoint.latest_step(run_dir)
    state = checkpoint.restore(run_dir, wiring.agent_template(config, train_spec), step)
    if config.num_seeds > 1:
        keys = jax.vmap(jax.random.key)(np.arange(config.num_seeds))
    else:
        keys = jax.random.key(0)
    with TrainingProgress(None, console) as bars:
        report = bars.evaluation if bars.live else None
        if wiring.is_episodic(config.agent_name):
            evaluator = episodic_training.make_evaluator(
                eval_env, wiring.make_agent(config), config.loop, config.num_seeds, report
            )
            metrics = evaluator.final(state, keys)
        else:
            metrics = _evaluate_multitask(config, eval_env, state, keys, protocol, report)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    backend = config.env.backend or envs.BACKENDS[config.env.name][0]
    record = {"checkpoint_step": step, "backend": backend, **metrics}
    write_json(run_dir / f"evaluation-{step}-{stamp}.json", record)
    return finish(run_dir, metrics, console, title=f"Evaluation of checkpoint {step}", plot=False)


def film_run(run_dir: Path, request: VideoRequest, console: Console | None = None) -> Path:
    """Film the newest checkpoint of `run_dir` (greedy episodes, `mtrl.app.videos`); returns the new
    `videos/step-<step>` directory. Scores nothing else: `mtrl evaluate` without --video does that."""
    console = console or Console()
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    wiring.check_compatible(config)
    filmer = Filmer(config, request)
    filmer.env()  # refuses bad tasks and unfilmable envs before the checkpoint is read
    train_spec = EnvSpec.from_dict(json.loads((run_dir / "spec.json").read_text()))
    step = checkpoint.latest_step(run_dir)
    state = checkpoint.restore(run_dir, wiring.agent_template(config, train_spec), step)
    try:
        out, recordings = filmer.film(state, run_dir, step)
    finally:
        filmer.close()
    print_recordings(console, out, recordings)
    if log_videos_to_run(run_dir, config.wandb, wandb_videos(out, recordings)):
        console.print("logged the MP4s to the run's W&B run")
    return out


def check_protocol(agent_name: str, protocol: str | None) -> None:
    """A multi-task agent cannot adapt and a meta-RL agent is not scored without adapting: refuse both."""
    if protocol is None:
        return
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    meta = wiring.is_meta(agent_name)
    if protocol == "meta" and not meta:
        raise ValueError(
            f"{agent_name} is a multi-task agent and cannot adapt; the meta protocol needs a meta-RL "
            f"agent: {', '.join(wiring.meta_agent_names()) or 'none registered'}"
        )
    if protocol == "moore" and wiring.is_episodic(agent_name):
        raise ValueError(
            f"the moore protocol is for the off-policy (SAC-family) agents; {agent_name} is evaluated by "
            "--protocol all-goals"
        )
    if protocol != "meta" and meta:
        raise ValueError(
            f"{agent_name} is a meta-RL agent: it is evaluated by adapting on held-out tasks "
            f"(--protocol meta), not by the multi-task protocol {protocol!r}"
        )


def _evaluate_multitask(
    config: TrainConfig, eval_env, state, keys, protocol: str | None, report=None
) -> dict[str, float]:
    """The off-policy agents' evaluation: all-goals (every goal of every task once, deterministic) and/or
    the MOORE authors' protocol (random goals, sampled actions); by default those the run was trained with.
    `report` follows their progress (`Hooks.evaluation_progress`)."""
    agent = wiring.make_agent(config)

    def play(env, episodes, deterministic):
        on_round = evaluation.round_reporter(report, "eval" if deterministic else "eval_moore", episodes)

        def one_seed(agent_state, key):
            return evaluation.run_scored_episodes(
                env, agent, agent_state, key, episodes, deterministic, on_round
            )

        fn = evaluation.over_seeds(one_seed, env) if config.num_seeds > 1 else one_seed
        return jax.device_get(jax.jit(fn)(state, keys))  # success flags, returns

    metrics = {}
    if protocol in (None, "all-goals"):
        episodes = evaluation.episodes_per_env(eval_env.spec, eval_env.spec.goals_per_task)
        flags, returns = play(eval_env, episodes, True)
        metrics |= evaluation.eval_metrics(eval_env.spec, flags, returns=returns)
    if protocol == "moore" or (protocol is None and config.loop.moore_eval_episodes):
        per_task = config.loop.moore_eval_episodes or MOORE_EVAL_EPISODES
        loop = dataclasses.replace(config.loop, moore_eval_episodes=per_task)
        env = wiring.make_moore_eval_env(dataclasses.replace(config, loop=loop))
        episodes = evaluation.sampled_episodes_per_env(env.spec, per_task)
        flags, returns = play(env, episodes, False)
        metrics |= evaluation.eval_metrics(env.spec, flags, prefix="eval_moore", returns=returns)
    return metrics
