"""A training run end to end: run directory, logging, checkpoints, progress, final table and plots."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import subprocess
from pathlib import Path

import jax
import numpy as np
from rich.console import Console

from mtrl import checkpoint, evaluation, plots, training
from mtrl.app import wiring
from mtrl.app.config import TrainConfig, load_run_config, to_json
from mtrl.app.progress import TrainingProgress, markdown_table, success_table
from mtrl.logger import RunLogger, read_metrics

RUNS_ROOT = Path("runs")


@dataclasses.dataclass(frozen=True)
class RunResult:
    run_dir: Path
    success_per_task: dict[str, float]

    @property
    def mean_success(self) -> float:
        return float(np.mean(list(self.success_per_task.values())))


def train(config: TrainConfig, console: Console | None = None) -> RunResult:
    """Train as `config` says, writing everything into a new run directory."""
    console = console or Console()
    train_env, eval_env = wiring.make_envs(config)
    agent = wiring.make_agent(config)
    run_dir = create_run_dir(config)
    config = dataclasses.replace(config, run_dir=run_dir)
    _write_json(run_dir / "config.json", to_json(config))
    _write_json(run_dir / "spec.json", train_env.spec.to_dict())
    _write_json(run_dir / "versions.json", package_versions())
    console.print(f"run directory: {run_dir}")

    logger = RunLogger(run_dir, to_json(config), config.wandb, name=run_dir.name)
    checkpointer = checkpoint.Checkpointer(run_dir)
    spec = train_env.spec
    seeds = [config.seed + i for i in range(config.num_seeds)]
    keys = jax.random.key(seeds[0]) if len(seeds) == 1 else jax.vmap(jax.random.key)(np.array(seeds))
    total = config.loop.steps_per_task * spec.num_tasks
    try:
        with TrainingProgress(total, console) as progress:
            hooks = training.Hooks(log=logger.log, checkpoint=checkpointer.save, progress=progress.update)
            _, final = training.train(train_env, eval_env, agent, config.loop, keys, hooks=hooks)
    finally:
        logger.close()
        checkpointer.close()
    return finish(run_dir, spec.task_names, final, console, title="Final evaluation")


def evaluate_run(run_dir: Path, console: Console | None = None) -> RunResult:
    """Re-evaluate the newest checkpoint of `run_dir` on every goal of every task."""
    console = console or Console()
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    wiring.check_compatible(config)
    eval_env = wiring.make_eval_env(config)
    agent = wiring.make_agent(config)
    step = checkpoint.latest_step(run_dir)
    state = checkpoint.restore(run_dir, wiring.agent_template(config, eval_env.spec), step)
    episodes = evaluation.episodes_per_env(eval_env.spec, eval_env.spec.goals_per_task)

    def play(agent_state, key):
        return evaluation.run_episodes(eval_env, agent, agent_state, key, episodes)

    if config.num_seeds > 1:
        play = jax.vmap(play)
        keys = jax.vmap(jax.random.key)(np.arange(config.num_seeds))
    else:
        keys = jax.random.key(0)
    flags = np.asarray(jax.jit(play)(state, keys))
    metrics = evaluation.eval_metrics(eval_env.spec, flags)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    _write_json(run_dir / f"evaluation-{step}-{stamp}.json", {"checkpoint_step": step, **metrics})
    return finish(
        run_dir,
        eval_env.spec.task_names,
        metrics,
        console,
        title=f"Evaluation of checkpoint {step}",
        plot=False,
    )


def finish(run_dir, task_names, metrics, console, *, title: str, plot: bool = True) -> RunResult:
    per_task = {task: metrics[f"eval/{task}/success"] for task in task_names}
    console.print(success_table(per_task, title))
    (run_dir / "success_table.md").write_text(f"# {title}\n\n{markdown_table(per_task)}")
    if plot:
        plots.plot_run(run_dir, read_metrics(run_dir), tuple(task_names))
    return RunResult(run_dir, per_task)


def create_run_dir(config: TrainConfig) -> Path:
    """A new, empty run directory; an existing one is refused, never overwritten."""
    if config.run_dir is not None:
        run_dir = Path(config.run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(
                f"run directory {run_dir} already exists and is not empty; choose another --run-dir "
                "(nothing was changed)"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = RUNS_ROOT / f"{config.preset}-{config.agent_name}-{_env_label(config)}-s{config.seed}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    run_dir.mkdir(parents=True)
    return run_dir


def package_versions() -> dict[str, str]:
    """Versions that decide whether two runs are comparable."""
    versions = {}
    for name in ("mtrl", "jax", "jaxlib", "flax", "optax", "mujoco", "metaworld", "gymnasium"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    versions["mtrl_commit"] = commit
    return versions


def _env_label(config: TrainConfig) -> str:
    return config.env.name + (f"-{config.env.task}" if config.env.task else "")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
