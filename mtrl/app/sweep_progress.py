"""The live table of a running sweep: runs done / running / queued / failed, each run's steps and success.

It reads only what runs write anyway (`spec.json`, the tail of `metrics.jsonl`), so it also shows runs that
another launcher started; on Slurm, each run's job and its state as `squeue` last gave it.
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
        statuses = ("done", "running", "queued", "failed", "stopped")
        counts = {s: sum(j.status == s for j in self.jobs) for s in statuses}
        shown_counts = {s: n for s, n in counts.items() if n or s != "stopped"}
        title = " · ".join(f"{n} {s}" for s, n in shown_counts.items()) + f" of {len(self.jobs)} runs"
        table = Table(title=title)
        slurm = any(job.slurm_job is not None for job in self.jobs)
        for column in ("run", "status", *["slurm job"] * slurm, "steps", "eval success"):
            table.add_column(column, justify="right" if column in ("steps", "eval success") else "left")
        shown = self.jobs if len(self.jobs) <= self.MAX_ROWS else [j for j in self.jobs if j.status != "done"]
        for job in shown[: self.MAX_ROWS]:
            step, total, success = run_progress(job.run_dir, job.run.config)
            steps = f"{step:,}/{total:,}" if total else "-"
            job_cell = [f"{job.slurm_job or '-'} {job.slurm_state.lower()}".strip()] * slurm
            table.add_row(
                job.run.name, job.status, *job_cell, steps, "-" if success is None else f"{success:.3f}"
            )
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
