"""Run logging: one JSON line per log step on disk, mirrored to Weights & Biases when it works.

W&B mode "auto" means online when an API key is configured (WANDB_API_KEY or a netrc entry) and offline
otherwise; "disabled" turns it off. A W&B failure, at start or later, prints one warning and the run goes on
with local logging only: losing the dashboard must never lose the run.
"""

from __future__ import annotations

import dataclasses
import json
import netrc
import os
import warnings
from pathlib import Path
from typing import Any, Literal

WandbMode = Literal["auto", "online", "offline", "disabled"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class WandbConfig:
    """Where and how runs appear in Weights & Biases."""

    mode: WandbMode = "auto"
    """auto: online if an API key is configured, else offline; or online / offline / disabled."""
    project: str = "mtrl"
    entity: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()


def has_wandb_key() -> bool:
    """Whether W&B could log online without asking for a key."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def resolve_mode(mode: WandbMode) -> str:
    if mode == "auto":
        return "online" if has_wandb_key() else "offline"
    return mode


class RunLogger:
    """Appends metrics to `metrics.jsonl` in the run directory and, if enabled, to a W&B run."""

    def __init__(self, run_dir: Path, config: dict[str, Any], wandb_config: WandbConfig, name: str):
        self.path = Path(run_dir) / "metrics.jsonl"
        self._wandb = None
        mode = resolve_mode(wandb_config.mode)
        if mode != "disabled":
            self._wandb = self._start_wandb(run_dir, config, wandb_config, mode, name)

    def _start_wandb(self, run_dir, config, wandb_config, mode, name):
        try:
            import wandb

            run = wandb.init(
                project=wandb_config.project,
                entity=wandb_config.entity,
                group=wandb_config.group,
                tags=list(wandb_config.tags),
                name=name,
                config=config,
                dir=str(run_dir),
                mode=mode,
                settings=wandb.Settings(silent=True, console="off"),
            )
            (Path(run_dir) / "wandb_run_id").write_text(run.id)
            return run
        except Exception as error:  # noqa: BLE001 — any W&B failure must leave training running
            warnings.warn(f"W&B could not start ({error!s:.200}); logging locally only", stacklevel=2)
            return None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        if self._wandb is not None:
            try:
                self._wandb.log(metrics, step=int(step))
            except Exception as error:  # noqa: BLE001
                warnings.warn(f"W&B logging failed ({error!s:.200}); logging locally only", stacklevel=2)
                self._wandb = None

    def close(self) -> None:
        if self._wandb is not None:
            try:
                self._wandb.finish()
            except Exception:  # noqa: BLE001
                pass
            self._wandb = None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of a run's `metrics.jsonl`, in order."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
