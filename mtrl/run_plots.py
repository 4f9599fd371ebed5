"""PNG plots of a run: the mean success curve and the per-task success bars of the last evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_run(
    run_dir: Path, records: list[dict[str, Any]], task_names: tuple[str, ...], prefix: str = "eval"
) -> list[Path]:
    """Write `plots/success_curve.png` and `plots/task_success.png`; returns the files written.

    `prefix` picks the evaluation: "eval" (multi-task) or "meta_test" (held-out tasks after adaptation).
    """
    evals = [r for r in records if f"{prefix}/success" in r]
    if not evals:
        return []
    out = Path(run_dir) / "plots"
    out.mkdir(exist_ok=True)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["env/steps_per_task"] for r in evals], [r[f"{prefix}/success"] for r in evals], marker="o")
    ax.set(
        xlabel="env steps per task",
        ylabel="mean success",
        ylim=(-0.02, 1.02),
        title=("Meta-test success after adaptation" if prefix == "meta_test" else "Evaluation success")
        + " (mean over tasks)",
    )
    ax.grid(alpha=0.3)
    curve = out / "success_curve.png"
    fig.tight_layout()
    fig.savefig(curve, dpi=100)
    plt.close(fig)

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
    bars = out / "task_success.png"
    fig.tight_layout()
    fig.savefig(bars, dpi=100)
    plt.close(fig)
    return [curve, bars]
