"""`mtrl train --resume`: continue a stopped run exactly, and refuse a config that would change the run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.console import Console

from mtrl import checkpoint, training
from mtrl.app import videos, wiring
from mtrl.app.config import TrainConfig, dotted_fields, load_run_config, to_json
from mtrl.app.results import RunResult
from mtrl.app.run import check_memory, run_training, seed_keys
from mtrl.app.run_dir import exclusive, write_json


def resume(run_dir: Path, config: TrainConfig | None = None, console: Console | None = None) -> RunResult:
    """Continue `run_dir` from its newest readable checkpoint, exactly as if it had never stopped.

    `config` (default: the run's own) may differ from the stored one only in W&B settings, a larger
    `loop.steps_per_task` and the video cadence; any other difference is refused, naming the fields.
    """
    console = console or Console()
    run_dir = Path(run_dir)
    load_run_config(run_dir)  # a clear error if it is not a run directory, before anything is touched
    with exclusive(run_dir):
        return _resume(run_dir, config, console)


def _resume(run_dir: Path, config: TrainConfig | None, console: Console) -> RunResult:
    stored = load_run_config(run_dir)
    config = wiring.with_backend(dataclasses.replace(config or stored, run_dir=run_dir))
    check_resumable(stored, config)
    if config.loop.video_every_steps_per_task:
        videos.check_filmable(config)
    train_env, eval_env = wiring.make_envs(config)
    check_memory(config, train_env.spec)
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
        write_json(run_dir / "config.json", to_json(config))
    console.print(f"resuming {run_dir} from step {restored.step}")
    return run_training(config, run_dir, train_env, eval_env, console, start, restored.loop["metrics_bytes"])


# a run directory may be moved; videos are filmed apart from training and change none of its numbers
RESUMABLE_CHANGES = ("loop.steps_per_task", "loop.video_every_steps_per_task", "wandb.", "run_dir")


def check_resumable(stored: TrainConfig, config: TrainConfig) -> None:
    """Refuse to resume with a config whose run would differ from the checkpointed one, naming the fields."""
    old = dotted_fields(to_json(wiring.with_backend(stored)))
    new = dotted_fields(to_json(wiring.with_backend(config)))  # the default backend, named
    changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
    refused = [k for k in changed if not k.startswith(RESUMABLE_CHANGES)]
    if refused:
        details = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in refused)
        raise ValueError(
            f"cannot resume {config.run_dir} with a different config: {details}; only "
            "loop.steps_per_task (larger), loop.video_every_steps_per_task and wandb.* may change"
        )
    if config.loop.steps_per_task < stored.loop.steps_per_task:
        raise ValueError(
            f"cannot resume with loop.steps_per_task={config.loop.steps_per_task} below the run's "
            f"{stored.loop.steps_per_task}"
        )
