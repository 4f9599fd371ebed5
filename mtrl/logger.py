"""Run logging: one JSON line per log step on disk, mirrored to Weights & Biases when it works.

W&B mode "auto" means online when an API key is configured (WANDB_API_KEY or a netrc entry) and offline
(with one warning) otherwise; "disabled" turns it off. If online W&B cannot start (no network, say), the run
logs to W&B offline instead, with one warning; any other W&B failure, at start or later, prints one warning
and the run goes on with local logging only: losing the dashboard must never lose the run.
"""

from __future__ import annotations

import dataclasses
import json
import netrc
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

WandbMode = Literal["auto", "online", "offline", "disabled"]
WANDB_INIT_TIMEOUT_S = 30  # without network, fall back to offline after this long, not W&B's default 90 s
ELAPSED = "time/elapsed_s"
"""Wall-clock seconds of the run when a line was logged, summed over its sessions (resumes)."""
WALL_CLOCK_KEYS = (ELAPSED, "env/steps_per_second")
"""The logged values that depend on how fast the machine was, not on what the run computed."""


def without_wall_clock(record: dict[str, Any]) -> dict[str, Any]:
    """A metrics line without its wall-clock values: what two runs of one computation have in common."""
    return {k: v for k, v in record.items() if k not in WALL_CLOCK_KEYS}


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
    """Appends metrics to `metrics.jsonl` in the run directory and, if enabled, to a W&B run.

    Every line carries `time/elapsed_s`, the seconds since the logger started (compilation included).
    `resume_at` (bytes) continues a run from a checkpoint: the log is cut back to where it stood when the
    checkpoint was written, so the lines the resumed run writes again are neither lost nor duplicated, and
    the W&B run with the id in `wandb_run_id` is resumed; steps it already received are not sent twice. The
    clock then continues from the last line kept: the time of the work that is redone counts once.
    """

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any],
        wandb_config: WandbConfig,
        name: str,
        *,
        resume_at: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self._wandb = None
        self._wandb_has_step = -1
        self._elapsed_before = 0.0
        if resume_at is not None:
            self._wandb_has_step = truncate_log(self.path, resume_at)
            self._elapsed_before = last_elapsed(self.path)
        self._clock = clock
        self._started = clock()
        mode = resolve_mode(wandb_config.mode)
        if wandb_config.mode == "auto" and mode == "offline":
            warnings.warn(
                f"no W&B API key: logging offline into {self.run_dir / 'wandb'} "
                "(upload later with `wandb sync`)",
                stacklevel=2,
            )
        if mode != "disabled":
            run_id = self._previous_run_id() if resume_at is not None else None
            self._wandb = self._start_wandb(config, wandb_config, mode, name, run_id)

    @property
    def position(self) -> int:
        """Bytes in `metrics.jsonl` so far: what a checkpoint records to resume the log from."""
        return self.path.stat().st_size if self.path.exists() else 0

    def _previous_run_id(self) -> str | None:
        path = self.run_dir / "wandb_run_id"
        return path.read_text().strip() if path.exists() else None

    def _start_wandb(self, config, wandb_config, mode, name, run_id):
        try:
            return self._init_wandb(config, wandb_config, mode, name, run_id)
        except Exception as error:  # noqa: BLE001 — any W&B failure must leave training running
            if mode == "online":  # no network, a bad key, a server error: keep the dashboard data offline
                reason = str(error).splitlines()[0][:200]
                warnings.warn(f"W&B online failed ({reason}); logging offline instead", stacklevel=3)
                try:
                    return self._init_wandb(config, wandb_config, "offline", name, run_id)
                except Exception as offline_error:  # noqa: BLE001
                    error = offline_error
            warnings.warn(f"W&B could not start ({error!s:.200}); logging locally only", stacklevel=3)
            return None

    def _init_wandb(self, config, wandb_config, mode, name, run_id):
        import wandb

        run = wandb.init(
            project=wandb_config.project,
            entity=wandb_config.entity,
            group=wandb_config.group,
            tags=list(wandb_config.tags),
            name=name,
            config=config,
            dir=str(self.run_dir),
            mode=mode,
            id=run_id,
            resume="allow" if run_id else None,
            settings=wandb.Settings(silent=True, console="off", init_timeout=WANDB_INIT_TIMEOUT_S),
        )
        (self.run_dir / "wandb_run_id").write_text(run.id)
        return run

    def log(self, step: int, metrics: dict[str, float]) -> None:
        elapsed = round(self._elapsed_before + self._clock() - self._started, 3)
        metrics = {**metrics, ELAPSED: elapsed}
        record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        if self._wandb is not None and step > self._wandb_has_step:
            try:
                self._wandb.log(metrics, step=int(step))
            except Exception as error:  # noqa: BLE001
                warnings.warn(f"W&B logging failed ({error!s:.200}); logging locally only", stacklevel=2)
                self._wandb = None

    def log_videos(self, step: int, videos: dict[str, Path]) -> None:
        """Send MP4 files to the W&B run as videos under their keys (metrics.jsonl holds numbers only)."""
        if self._wandb is None or not videos:
            return
        try:
            import wandb

            media = {key: wandb.Video(str(path), format="mp4") for key, path in videos.items()}
            self._wandb.log(media, step=int(step))
        except Exception as error:  # noqa: BLE001 — a failed upload must not stop training
            warnings.warn(f"W&B video logging failed ({error!s:.200})", stacklevel=2)

    def close(self) -> None:
        if self._wandb is not None:
            try:
                self._wandb.finish()
            except Exception:  # noqa: BLE001
                pass
            self._wandb = None


def log_videos_to_run(run_dir: Path, wandb_config: WandbConfig, videos: dict[str, Path]) -> str | None:
    """Add videos to the W&B run a finished run logged to (its `wandb_run_id`), after its last step; returns
    the run id, or None when the run has no W&B run or W&B is off or fails (a warning says why)."""
    id_file = Path(run_dir) / "wandb_run_id"
    mode = resolve_mode(wandb_config.mode)
    if mode == "disabled" or not id_file.exists() or not videos:
        return None
    try:
        import wandb

        run = wandb.init(
            project=wandb_config.project,
            entity=wandb_config.entity,
            id=id_file.read_text().strip(),
            resume="allow",
            dir=str(run_dir),
            mode=mode,
            settings=wandb.Settings(silent=True, console="off", init_timeout=WANDB_INIT_TIMEOUT_S),
        )
        run.log({key: wandb.Video(str(path), format="mp4") for key, path in videos.items()})
        run.finish()
        return run.id
    except Exception as error:  # noqa: BLE001 — the files are written whatever W&B does
        warnings.warn(f"W&B video logging failed ({error!s:.200}); the files are in {run_dir}", stacklevel=2)
        return None


def truncate_log(path: Path, size: int) -> int:
    """Cut `path` back to its first `size` bytes; returns the largest step among the lines cut (else -1)."""
    if not path.exists() or path.stat().st_size < size:
        raise ValueError(f"{path} is shorter than the {size} bytes its checkpoint recorded; cannot resume it")
    with path.open("rb+") as file:
        file.seek(size)
        cut = file.read().decode(errors="replace").splitlines()
        file.truncate(size)
    steps = []
    for line in cut:
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError, TypeError):  # a line the crash cut in half
            continue
    return max(steps, default=-1)


def last_elapsed(path: Path) -> float:
    """`time/elapsed_s` of the last line of a metrics log that has one (0 if none: a run from before it)."""
    if not path.exists():
        return 0.0
    for line in reversed(path.read_text().splitlines()):
        try:
            return float(json.loads(line)[ELAPSED])
        except (ValueError, KeyError, TypeError):
            continue
    return 0.0


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of a run's `metrics.jsonl`, in order."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _plain(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
