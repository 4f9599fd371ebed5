"""Terminal output of a run: a progress bar with steps/s, ETA and latest success, and the per-task table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class TrainingProgress:
    """A rich progress bar over total env steps; `update` is the training loop's progress hook."""

    def __init__(self, total_steps: int, console: Console | None = None, done: int = 0):
        self.console = console or Console()
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]} steps/s"),
            TextColumn("success {task.fields[success]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._task = self._progress.add_task(
            "train", total=total_steps, completed=done, speed="-", success="-"
        )

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def update(self, step: int, metrics: dict[str, float]) -> None:
        fields = {}
        if "env/steps_per_second" in metrics:
            fields["speed"] = f"{metrics['env/steps_per_second']:,.0f}"
        if "eval/success" in metrics:
            fields["success"] = f"{metrics['eval/success']:.2f}"
            line = f"eval at {step:,} steps: mean success {metrics['eval/success']:.3f}"
            if "eval_moore/return" in metrics:  # MiniGrid: the MOORE authors' metric
                line += f", MOORE-protocol return {metrics['eval_moore/return']:.3f}"
            self.console.log(line)
        self._progress.update(self._task, completed=step, **fields)


def success_table(per_task: dict[str, float], title: str, metric: str = "success") -> Table:
    """Per-task success (or another metric, e.g. MiniGrid's return) with the mean as the last row."""
    table = Table(title=title)
    table.add_column("task")
    table.add_column(metric, justify="right")
    for task, value in per_task.items():
        table.add_row(task, f"{value:.3f}")
    mean = sum(per_task.values()) / max(len(per_task), 1)
    table.add_row("[bold]mean", f"[bold]{mean:.3f}")
    return table


def markdown_table(per_task: dict[str, float], metric: str = "success") -> str:
    lines = [f"| task | {metric} |", "|---|---|"]
    lines += [f"| {task} | {value:.3f} |" for task, value in per_task.items()]
    mean = sum(per_task.values()) / max(len(per_task), 1)
    return "\n".join([*lines, f"| **mean** | **{mean:.3f}** |", ""])
