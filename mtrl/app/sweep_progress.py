"""The live table of a running sweep: runs done / running / queued / failed, each run's steps and success.

It reads only what runs write anyway (`spec.json`, the tail of `metrics.jsonl`), so it also shows runs that
another launcher started.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mtrl.app.config import TrainConfig
from mtrl.app.sweep_plan import Job


class SweepProgress:
    """A live table of the sweep (on a terminal): runs done / running / queued and each run's progress."""

    MAX_ROWS = 30

    def __init__(self, jobs: list[Job], console: Console):
        self.jobs, self.console = jobs, console
        self._live = Live(self.table(), console=console, auto_refresh=False) if console.is_terminal else None

    def __enter__(self) -> SweepProgress:
        if self._live:
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live:
            self._live.stop()
        else:
            self.console.print(self.table())

    def refresh(self) -> None:
        if self._live:
            self._live.update(self.table(), refresh=True)

    def table(self) -> Table:
        counts = {s: sum(j.status == s for j in self.jobs) for s in ("done", "running", "queued", "failed")}
        title = " · ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(self.jobs)} runs"
        table = Table(title=title)
        for column in ("run", "status", "steps", "eval success"):
            table.add_column(column, justify="left" if column in ("run", "status") else "right")
        shown = self.jobs if len(self.jobs) <= self.MAX_ROWS else [j for j in self.jobs if j.status != "done"]
        for job in shown[: self.MAX_ROWS]:
            step, total, success = run_progress(job.run_dir, job.run.config)
            steps = f"{step:,}/{total:,}" if total else "-"
            table.add_row(job.run.name, job.status, steps, "-" if success is None else f"{success:.3f}")
        return table


def run_progress(run_dir: Path, config: TrainConfig) -> tuple[int, int, float | None]:
    """(latest logged step, total steps, latest mean eval success) from a run directory's files."""
    spec_path, metrics = run_dir / "spec.json", run_dir / "metrics.jsonl"
    if not spec_path.exists() or not metrics.exists():
        return 0, 0, None
    total = config.loop.steps_per_task * len(json.loads(spec_path.read_text())["task_names"])
    step, success = 0, None
    with metrics.open("rb") as file:
        file.seek(max(0, metrics.stat().st_size - 65536))
        for line in file.read().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the first, partial line of the tail, or a line being written
            step = record.get("step", step)
            success = record.get("eval/success", success)
    return step, total, success
