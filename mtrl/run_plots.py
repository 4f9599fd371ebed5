"""PNG plots of a run: mean success against steps and against wall-clock time, the mean return against
steps, each task's success curve, and the per-task success bars of the last evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

from mtrl.logger import ELAPSED

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TITLES = {"eval": "Evaluation success", "meta_test": "Meta-test success after adaptation"}


def plot_run(
    run_dir: Path, records: list[dict[str, Any]], task_names: tuple[str, ...], prefix: str = "eval"
) -> list[Path]:
    """Write into `run_dir/plots/`: `success_curve.png` (mean over tasks against env steps per task),
    `success_curve_time.png` (the same against wall-clock minutes, for runs that logged it),
    `return_curve.png` (mean undiscounted return over tasks, where logged: it moves before success does),
    `task_curves.png` (one line per task) and `task_success.png` (bars at the last evaluation).
    Returns the files written.

    `prefix` picks the evaluation: "eval" (multi-task) or "meta_test" (held-out tasks after adaptation).
    """
    evals = [r for r in records if f"{prefix}/success" in r]
    if not evals:
        return []
    out = Path(run_dir) / "plots"
    out.mkdir(exist_ok=True)
    steps = [r["env/steps_per_task"] for r in evals]
    mean = [r[f"{prefix}/success"] for r in evals]
    title = TITLES.get(prefix, "Evaluation success")
    written = [
        _curve(out / "success_curve.png", steps, mean, "env steps per task", f"{title} (mean over tasks)")
    ]
    if all(ELAPSED in r for r in evals):
        minutes = [r[ELAPSED] / 60.0 for r in evals]
        xlabel = "wall-clock minutes (compilation and evaluation included)"
        written.append(
            _curve(out / "success_curve_time.png", minutes, mean, xlabel, f"{title} (mean over tasks)")
        )
    if all(f"{prefix}/return" in r for r in evals):
        returns = [r[f"{prefix}/return"] for r in evals]
        heading = f"{title.replace('success', 'return')} (mean over tasks)"
        path = out / "return_curve.png"
        written.append(_curve(path, steps, returns, "env steps per task", heading, "mean return"))
    written.append(_task_curves(out / "task_curves.png", evals, steps, task_names, prefix, title))

    last = evals[-1]
    values = [last.get(f"{prefix}/{task}/success", 0.0) for task in task_names]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(task_names)), 4))
    ax.bar(range(len(task_names)), values)
    ax.set_xticks(range(len(task_names)), task_names, rotation=60, ha="right", fontsize=8)
    ax.set(
        ylabel="success",
        ylim=(0, 1.02),
        title=f"Per-task success at {int(last['env/steps_per_task']):,} steps per task",
    )
    written.append(_save(fig, out / "task_success.png"))
    return written


def _curve(path: Path, x, y, xlabel: str, title: str, ylabel: str = "mean success") -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, y, marker="o")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if ylabel == "mean success":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _task_curves(path, evals, steps, task_names, prefix, title) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for task in task_names:
        key = f"{prefix}/{task}/success"
        points = [(s, r[key]) for s, r in zip(steps, evals, strict=True) if key in r]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=task)
    ax.set(xlabel="env steps per task", ylabel="success", ylim=(-0.02, 1.02), title=f"{title} per task")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(task_names) > 10 else 1, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
