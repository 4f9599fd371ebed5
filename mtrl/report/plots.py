"""PNG figures of a multi-run report: learning curves with CI bands, aggregate intervals, task bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mtrl.report.stats import Interval  # noqa: E402


def plot_curves(
    path: Path,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    metric: str = "success",
    xlabel: str = "env steps per task",
) -> Path:
    """`metric` against steps (or time); `curves[label] = (x [T], [T, 3] point/low/high)`."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (x, band) in curves.items():
        (line,) = ax.plot(x, band[:, 0], marker="o", markersize=3, label=label)
        ax.fill_between(x, band[:, 1], band[:, 2], color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set(xlabel=xlabel, ylabel=f"{metric} (IQM, 95% CI)", title=title)
    if metric == "success":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_intervals(
    path: Path, intervals: dict[str, dict[str, Interval]], title: str, metric: str = "success"
) -> Path:
    """One panel per statistic, one horizontal confidence interval per group: `intervals[stat][label]`."""
    stats = list(intervals)
    labels = list(next(iter(intervals.values())))
    fig, axes = plt.subplots(
        1, len(stats), figsize=(3.2 * len(stats), 0.5 * len(labels) + 1.6), sharey=True, squeeze=False
    )
    for ax, stat in zip(axes[0], stats, strict=True):
        for row, label in enumerate(labels):
            point, low, high = intervals[stat][label]
            ax.plot([low, high], [row, row], linewidth=6, alpha=0.5, color=f"C{row}")
            ax.plot([point], [row], marker="|", markersize=14, color="black")
        ax.set(title=stat, xlabel=metric if stat != "optimality gap" else f"1 − {metric}")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(labels)), labels, fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_task_bars(
    path: Path, task_names: list[str], means: dict[str, np.ndarray], title: str, metric: str = "success"
) -> Path:
    """Grouped bars of each group's mean `metric` per task."""
    width = 0.8 / max(len(means), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(task_names) * max(1, len(means) / 2)), 4.5))
    for i, (label, values) in enumerate(means.items()):
        ax.bar(np.arange(len(task_names)) + (i - (len(means) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(range(len(task_names)), task_names, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel=f"{metric} (mean over seeds)", title=title)
    if metric == "success":
        ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
