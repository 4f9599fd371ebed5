"""What a finished run or evaluation shows: per-task tables for every protocol evaluated, and the plots."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mtrl import run_plots
from mtrl.app.progress import markdown_table, success_table
from mtrl.logger import read_metrics


@dataclasses.dataclass(frozen=True)
class RunResult:
    run_dir: Path
    success_per_task: dict[str, float]

    @property
    def mean_success(self) -> float:
        return float(np.mean(list(self.success_per_task.values())))


PROTOCOL_TITLES = {  # metric prefix → how its table is titled
    "meta_test": "Meta-test success",
    "eval": "Success, all goals (deterministic)",
    "eval_moore": "Success, MOORE protocol (random goals, sampled actions)",
}


def success_per_task(
    metrics: dict[str, float], prefix: str | None = None, metric: str = "success"
) -> tuple[str, dict[str, float]]:
    """The final evaluation's per-task success (or `metric`) under `prefix`, by default the first present of
    held-out tasks after adaptation (`meta_test/…`, meta-RL agents), all goals (`eval/…`), MOORE's
    (`eval_moore/…`)."""
    if prefix is None:
        prefix = next((p for p in PROTOCOL_TITLES if f"{p}/success" in metrics), "eval")
    per_task = {}
    for name, value in metrics.items():
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == prefix and parts[2] == metric and not parts[1].startswith("seed"):
            per_task[parts[1]] = value
    return prefix, per_task


def finish(run_dir, metrics, console, *, title: str, plot: bool = True) -> RunResult:
    """Print and write a per-task table (success, and the return where logged) for every protocol
    evaluated; plot the primary one."""
    prefix, per_task = success_per_task(metrics)
    sections = []
    for shown in [p for p in PROTOCOL_TITLES if f"{p}/success" in metrics] or [prefix]:
        heading = f"{title}: {PROTOCOL_TITLES[shown][0].lower()}{PROTOCOL_TITLES[shown][1:]}"
        columns = {metric: success_per_task(metrics, shown, metric)[1] for metric in ("success", "return")}
        if columns["return"].keys() != columns["success"].keys():  # meta-test logs only a mean return
            del columns["return"]
        if "return" in columns:  # the columns say which metric: the title names the protocol only
            heading = heading.replace("success, ", "", 1)
        console.print(success_table(columns, heading))
        sections.append(f"# {heading}\n\n{markdown_table(columns)}")
    (run_dir / "success_table.md").write_text("\n".join(sections))
    if plot:
        run_plots.plot_run(run_dir, read_metrics(run_dir), tuple(per_task), prefix=prefix)
    return RunResult(run_dir, per_task)
