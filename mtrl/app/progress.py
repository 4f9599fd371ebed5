"""Terminal output of a run: a progress bar with steps/s, ETA and latest success, and the per-task table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

EVALUATION_LABELS = {"eval": "eval (all goals)", "eval_moore": "eval (MOORE protocol)"}


class TrainingProgress:
    """A rich progress bar over total env steps (none if `total_steps` is None), and one per running
    evaluation over its episode rounds.

    `update` is the training loop's progress hook; `evaluation` is its evaluation-progress hook, called
    from inside compiled evaluations (so from XLA's threads: rich's progress is thread-safe)."""

    def __init__(self, total_steps: int | None, console: Console | None = None, done: int = 0):
        self.console = console or Console()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[success]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        if total_steps is not None:  # None: only evaluations (`mtrl evaluate`)
            self._task = self._progress.add_task(
                "train", total=total_steps, completed=done, speed="- steps/s", success="success -"
            )
        self._evaluations: dict[str, TaskID] = {}

    @property
    def live(self) -> bool:
        """Whether the bars are drawn (a terminal); elsewhere evaluations need not report their progress."""
        return self.console.is_terminal

    def evaluation(self, protocol: str, done: int, total: int) -> None:
        """Show `done` of `total` episode rounds of the running `protocol` evaluation; the bar goes when
        the evaluation is complete."""
        task = self._evaluations.get(protocol)
        if task is None:
            label = EVALUATION_LABELS.get(protocol, protocol)
            task = self._progress.add_task(label, total=total, speed="episodes per env", success="")
            self._evaluations[protocol] = task
        self._progress.update(task, completed=done)
        if done >= total:
            self._progress.remove_task(self._evaluations.pop(protocol))

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def update(self, step: int, metrics: dict[str, float]) -> None:
        fields = {}
        if "env/steps_per_second" in metrics:
            fields["speed"] = f"{metrics['env/steps_per_second']:,.0f} steps/s"
        if "eval/success" in metrics:
            fields["success"] = f"success {metrics['eval/success']:.2f}"
            line = f"eval at {step:,} steps: mean success {metrics['eval/success']:.3f}"
            if "eval/return" in metrics:
                line += f", return {_number(metrics['eval/return'])}"
            if "eval_moore/return" in metrics:  # MiniGrid: the MOORE authors' metric
                line += f"; MOORE protocol: return {_number(metrics['eval_moore/return'])}"
            self.console.log(line)
        self._progress.update(self._task, completed=step, **fields)


def _number(value: float) -> str:
    """Success-sized numbers with three decimals, Meta-World-sized returns (hundreds) with one."""
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"


def _rows(columns: dict[str, dict[str, float]]) -> list[list[str]]:
    """One row per task and a last row of means over tasks, for every metric column; a column's numbers
    share one format (`_number` of its largest)."""
    tasks = list(next(iter(columns.values())))
    cells = []
    for values in columns.values():
        column = [values[task] for task in tasks] + [sum(values.values()) / max(len(values), 1)]
        decimals = 1 if max(abs(v) for v in column) >= 10 else 3
        cells.append([f"{v:,.{decimals}f}" for v in column])
    return [[name, *row] for name, row in zip([*tasks, "mean"], zip(*cells, strict=True), strict=True)]


def success_table(columns: dict[str, dict[str, float]], title: str) -> Table:
    """Per-task values of each metric (`{"success": {task: value}, "return": ...}`), the means last."""
    table = Table(title=title)
    table.add_column("task")
    for metric in columns:
        table.add_column(metric, justify="right")
    *rows, mean = _rows(columns)
    for row in rows:
        table.add_row(*row)
    table.add_row(*(f"[bold]{cell}" for cell in mean))
    return table


def markdown_table(columns: dict[str, dict[str, float]]) -> str:
    *rows, mean = _rows(columns)
    lines = ["| task | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([*lines, "| " + " | ".join(f"**{cell}**" for cell in mean) + " |", ""])
