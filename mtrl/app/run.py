"""A training run end to end: run directory, logging, checkpoints, progress, final table and plots."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import importlib.metadata
import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import jax
import numpy as np
from rich.console import Console

from mtrl import checkpoint, envs, episodic_training, evaluation, plots, resources, training
from mtrl.agents import task_encoders
from mtrl.app import wiring
from mtrl.app.config import TrainConfig, dotted_fields, load_run_config, to_json
from mtrl.app.progress import TrainingProgress, markdown_table, success_table
from mtrl.logger import RunLogger, read_metrics
from mtrl.types import EnvSpec

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
    _check_memory(config, train_env.spec)
    start = _transfer_start(config, train_env)  # reads the source run before anything is written
    run_dir = create_run_dir(config)
    config = dataclasses.replace(config, run_dir=run_dir)
    _write_json(run_dir / "config.json", to_json(config))
    _write_json(run_dir / "spec.json", train_env.spec.to_dict())
    _write_json(run_dir / "versions.json", package_versions())
    console.print(f"run directory: {run_dir}")
    with exclusive(run_dir), task_encoders.cached_in_run(run_dir):  # embeddings travel with the run
        return _run(config, run_dir, train_env, eval_env, console, start=start)


def _transfer_start(config: TrainConfig, train_env) -> training.Start | None:
    """A transfer run (`--agent.experts-from RUN_DIR`) starts from its initial state with the source run's
    expert CNNs in place; every other run starts from `init`."""
    if not wiring.traits(config.agent_name).expert_transfer or config.agent.experts_from is None:
        return None
    from mtrl.agents import moore_ppo
    from mtrl.app import transfer

    actor, critic = transfer.source_experts(config)
    state = episodic_training.initial_state(train_env, wiring.make_agent(config), seed_keys(config))
    with_experts = jax.vmap(moore_ppo.with_experts) if config.num_seeds > 1 else moore_ppo.with_experts
    return training.Start(state.replace(agent=with_experts(state.agent, actor, critic)), 0)


def resume(run_dir: Path, config: TrainConfig | None = None, console: Console | None = None) -> RunResult:
    """Continue `run_dir` from its newest readable checkpoint, exactly as if it had never stopped.

    `config` (default: the run's own) may differ from the stored one only in W&B settings and a larger
    `loop.steps_per_task`; any other difference is refused, naming the fields.
    """
    console = console or Console()
    run_dir = Path(run_dir)
    load_run_config(run_dir)  # a clear error if it is not a run directory, before anything is touched
    with exclusive(run_dir), task_encoders.cached_in_run(run_dir):
        return _resume(run_dir, config, console)


@contextlib.contextmanager
def exclusive(run_dir: Path):
    """Hold `run_dir` for this process (an advisory lock the kernel drops when the process dies, however it
    dies): resuming a run that another process is still training would interleave two writers' checkpoints
    and metric lines, so it is refused."""
    with open(run_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise ValueError(
                f"{run_dir} is being trained by {owner}; stop it first (Ctrl-C or SIGTERM checkpoints "
                "it) or wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _resume(run_dir: Path, config: TrainConfig | None, console: Console) -> RunResult:
    stored = load_run_config(run_dir)
    config = dataclasses.replace(config or stored, run_dir=run_dir)
    check_resumable(stored, config)
    train_env, eval_env = wiring.make_envs(config)
    _check_memory(config, train_env.spec)
    host = train_env.host_state() is not None
    template = wiring.train_state_template(config, train_env, seed_keys(config))
    restored = checkpoint.restore_run(run_dir, template, host=host)
    if host:
        train_env.restore_host_state(restored.train_state.env, restored.host)
    start = training.Start(restored.train_state, restored.loop["iteration"])
    if start.iteration >= wiring.num_iterations(config, train_env.spec):
        raise ValueError(
            f"{run_dir} already finished (step {restored.step}); to train it further, resume with a larger "
            "--loop.steps-per-task"
        )
    if config != stored:
        _write_json(run_dir / "config.json", to_json(config))
    console.print(f"resuming {run_dir} from step {restored.step}")
    return _run(config, run_dir, train_env, eval_env, console, start, restored.loop["metrics_bytes"])


RESUMABLE_CHANGES = ("loop.steps_per_task", "wandb.", "run_dir")  # a run directory may be moved


def check_resumable(stored: TrainConfig, config: TrainConfig) -> None:
    """Refuse to resume with a config whose run would differ from the checkpointed one, naming the fields."""
    old, new = dotted_fields(to_json(stored)), dotted_fields(to_json(config))
    changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
    refused = [k for k in changed if not k.startswith(RESUMABLE_CHANGES)]
    if refused:
        details = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in refused)
        raise ValueError(
            f"cannot resume {config.run_dir} with a different config: {details}; only "
            "loop.steps_per_task (larger) and wandb.* may change"
        )
    if config.loop.steps_per_task < stored.loop.steps_per_task:
        raise ValueError(
            f"cannot resume with loop.steps_per_task={config.loop.steps_per_task} below the run's "
            f"{stored.loop.steps_per_task}"
        )


def _run(config, run_dir, train_env, eval_env, console, start=None, metrics_bytes=None) -> RunResult:
    """The training proper, shared by a new run and a resumed one."""
    agent = wiring.make_agent(config)
    spec = train_env.spec
    wandb_config = {**to_json(config), "versions": package_versions()}
    logger = RunLogger(run_dir, wandb_config, config.wandb, name=run_dir.name, resume_at=metrics_bytes)
    checkpointer = checkpoint.Checkpointer(run_dir)

    def save(step: int, state, iteration: int) -> None:
        loop = {"iteration": iteration, "metrics_bytes": logger.position}
        checkpointer.save(step, state, loop=loop, host=train_env.host_state())

    total = config.loop.steps_per_task * spec.num_tasks
    done = 0 if start is None else start.iteration * config.loop.steps_per_iteration * spec.num_envs
    try:
        with StopOnSignal(console) as stop, TrainingProgress(total, console, done=done) as progress:
            hooks = training.Hooks(
                log=logger.log, checkpoint=save, progress=progress.update, stop_requested=stop.requested
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
    return finish(run_dir, final, console, title="Final evaluation")


def _check_memory(config: TrainConfig, spec) -> None:
    """Replay must fit in memory (off-policy agents; episodic agents size their own buffers)."""
    if not wiring.is_episodic(config.agent_name):
        resources.check_replay_fits(spec, config.loop.replay_per_task, config.num_seeds)


def seed_keys(config: TrainConfig) -> jax.Array:
    """One PRNG key per seed of the run (a single key for one seed)."""
    seeds = [config.seed + i for i in range(config.num_seeds)]
    return jax.random.key(seeds[0]) if len(seeds) == 1 else jax.vmap(jax.random.key)(np.array(seeds))


class StopOnSignal:
    """Turns the first SIGINT/SIGTERM into a request to stop after a checkpoint; a second SIGINT aborts."""

    def __init__(self, console: Console):
        self.console = console
        self._stop = False
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        return self._stop

    def _handle(self, signum, frame) -> None:
        if self._stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._stop = True
        name = signal.Signals(signum).name
        self.console.print(
            f"{name}: stopping after this iteration and writing a checkpoint (Ctrl-C again aborts)"
        )

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


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
    with task_encoders.cached_in_run(run_dir):
        return _evaluate_run(run_dir, console, protocol, backend)


def _evaluate_run(run_dir: Path, console: Console, protocol: str | None, backend: str | None) -> RunResult:
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
    if wiring.is_episodic(config.agent_name):
        evaluator = episodic_training.make_evaluator(
            eval_env, wiring.make_agent(config), config.loop, config.num_seeds
        )
        metrics = evaluator.final(state, keys)
    else:
        metrics = _evaluate_multitask(config, eval_env, state, keys, protocol)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    backend = config.env.backend or envs.BACKENDS[config.env.name][0]
    record = {"checkpoint_step": step, "backend": backend, **metrics}
    _write_json(run_dir / f"evaluation-{step}-{stamp}.json", record)
    return finish(run_dir, metrics, console, title=f"Evaluation of checkpoint {step}", plot=False)


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


def _evaluate_multitask(config: TrainConfig, eval_env, state, keys, protocol: str | None) -> dict[str, float]:
    """The off-policy agents' evaluation: all-goals (every goal of every task once, deterministic) and/or
    the MOORE authors' protocol (random goals, sampled actions); by default those the run was trained with."""
    agent = wiring.make_agent(config)

    def play(env, episodes, deterministic):
        def one_seed(agent_state, key):
            return evaluation.run_episodes(env, agent, agent_state, key, episodes, deterministic)

        fn = jax.vmap(one_seed) if config.num_seeds > 1 else one_seed
        return np.asarray(jax.jit(fn)(state, keys))

    metrics = {}
    if protocol in (None, "all-goals"):
        episodes = evaluation.episodes_per_env(eval_env.spec, eval_env.spec.goals_per_task)
        metrics |= evaluation.eval_metrics(eval_env.spec, play(eval_env, episodes, True))
    if protocol == "moore" or (protocol is None and config.loop.moore_eval_episodes):
        per_task = config.loop.moore_eval_episodes or MOORE_EVAL_EPISODES
        loop = dataclasses.replace(config.loop, moore_eval_episodes=per_task)
        env = wiring.make_moore_eval_env(dataclasses.replace(config, loop=loop))
        episodes = evaluation.sampled_episodes_per_env(env.spec, per_task)
        metrics |= evaluation.eval_metrics(env.spec, play(env, episodes, False), prefix="eval_moore")
    return metrics


PROTOCOL_TITLES = {  # metric prefix → how its table is titled
    "meta_test": "Meta-test success",
    "eval": "Success, all goals (deterministic)",
    "eval_moore": "Success, MOORE protocol (random goals, sampled actions)",
}


def success_per_task(
    metrics: dict[str, float], prefix: str | None = None, metric: str = "success"
) -> tuple[str, dict[str, float]]:
    """The final evaluation's per-task success (or `metric`) under `prefix`, by default the first present of
    held-out tasks after adaptation (`meta_test/…`, meta-RL agents), all goals (`eval/…`), MOORE's
    (`eval_moore/…`)."""
    if prefix is None:
        prefix = next((p for p in PROTOCOL_TITLES if f"{p}/success" in metrics), "eval")
    per_task = {}
    for name, value in metrics.items():
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == prefix and parts[2] == metric and not parts[1].startswith("seed"):
            per_task[parts[1]] = value
    return prefix, per_task


def finish(run_dir, metrics, console, *, title: str, plot: bool = True) -> RunResult:
    """Print and write a per-task success table for every protocol evaluated; plot the primary one."""
    prefix, per_task = success_per_task(metrics)
    sections = []
    for shown in [p for p in PROTOCOL_TITLES if f"{p}/success" in metrics] or [prefix]:
        shown_title = f"{title}: {PROTOCOL_TITLES[shown][0].lower()}{PROTOCOL_TITLES[shown][1:]}"
        for metric in ("success", "return"):
            if f"{shown}/{metric}" not in metrics:
                continue
            heading = shown_title if metric == "success" else shown_title.replace("Success", "Return", 1)
            heading = heading.replace("success,", "return,", 1) if metric == "return" else heading
            table = success_per_task(metrics, shown, metric)[1]
            console.print(success_table(table, heading, metric))
            sections.append(f"# {heading}\n\n{markdown_table(table, metric)}")
    (run_dir / "success_table.md").write_text("\n".join(sections))
    if plot:
        plots.plot_run(run_dir, read_metrics(run_dir), tuple(per_task), prefix=prefix)
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
    for name in ("mtrl", "jax", "jaxlib", "flax", "optax", "mujoco", "metaworld", "gymnasium", "minigrid"):
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
