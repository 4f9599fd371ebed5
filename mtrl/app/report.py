"""`mtrl report RUN_DIR...`: IQM, mean, median and optimality gap with confidence intervals over seeds.

Groups the seeds of equal configs, aggregates their final and best evaluation success (or, with `--metric
return`, undiscounted return) with stratified bootstrap intervals (`mtrl.report.stats`), and writes
`report.md`, CSV tables and PNG plots into `--out`; `--html` adds `report.html`, one self-contained page of
the tables and plots with links to the runs' videos (`mtrl.report.html`); `--compare-published` adds the
literature's success figures for the same method and benchmark. `--protocol` picks the evaluation that is
read (`mtrl.report.runs.PROTOCOLS`); `--x time` draws the learning curves against wall-clock time.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from mtrl.report import plots, published, stats
from mtrl.report.runs import (
    DEFAULT_PROTOCOLS,
    METRICS,
    PROTOCOLS,
    Group,
    SeedRun,
    check_choice,
    group_runs,
    read_run_dir,
)

MEASURES = ("final", "best")
X_AXES = {"steps": "env steps per task", "time": "wall-clock minutes (compilation and evaluation included)"}


@dataclasses.dataclass(frozen=True)
class Summary:
    """A group's aggregates: `intervals[measure][statistic]` for measure final or best."""

    group: Group
    intervals: dict[str, dict[str, stats.Interval]]


@dataclasses.dataclass(frozen=True)
class Improvement:
    x: str
    y: str
    benchmark: str
    interval: stats.Interval


@dataclasses.dataclass(frozen=True)
class Report:
    summaries: list[Summary]
    improvements: list[Improvement]
    published_rows: list[list[str]]
    notes: list[str]
    metric: str = "success"

    @property
    def statistics(self) -> list[str]:
        return list(aggregates(self.metric))


def aggregates(metric: str) -> dict[str, stats.Aggregate]:
    """The statistics of `metric`; the optimality gap (shortfall from a success of 1) is not for returns."""
    return {
        name: f for name, f in stats.AGGREGATES.items() if metric == "success" or name != "optimality gap"
    }


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mtrl report",
        description="Aggregate runs over seeds: IQM, mean, median and optimality gap of the final and best "
        "evaluation success (or IQM, mean and median of the return) with 95% stratified bootstrap confidence "
        "intervals (Agarwal et al., NeurIPS 2021), per-task tables, learning curves and probability of "
        "improvement.",
    )
    parser.add_argument(
        "run_dirs",
        type=Path,
        nargs="+",
        metavar="RUN_DIR",
        help="run directories, or sweep directories holding them",
    )
    parser.add_argument("--out", type=Path, default=Path("report"), help="output directory (default report/)")
    parser.add_argument(
        "--group-by",
        nargs="+",
        default=None,
        metavar="FIELD",
        help="config fields that define a group, e.g. agent_name env.name (default: every field but seed, "
        "num_seeds, run_dir, preset and wandb.*)",
    )
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap replicates (default 2000)")
    parser.add_argument(
        "--metric",
        default="success",
        metavar="{" + ",".join(METRICS) + "}",
        help="what to aggregate: success (default) or the undiscounted return (the MOORE paper's MiniGrid "
        "metric; no optimality gap, which needs a success in [0, 1])",
    )
    parser.add_argument(
        "--protocol",
        default=None,
        metavar="{" + ",".join(PROTOCOLS) + "}",
        help="the evaluation to read, <protocol>/.../<metric>: "
        + "; ".join(f"{name}: {what}" for name, what in PROTOCOLS.items())
        + ". Default, per run, the first it logged of: "
        + "; ".join(f"{metric}: {', '.join(order)}" for metric, order in DEFAULT_PROTOCOLS.items())
        + ". eval_moore runs form their own benchmark, '<benchmark> (eval_moore)'",
    )
    parser.add_argument(
        "--x",
        default="steps",
        metavar="{" + ",".join(X_AXES) + "}",
        help="the learning curves' x-axis: steps (env steps per task, default) or time (the runs' "
        "time/elapsed_s: at each time, every seed's latest evaluation)",
    )
    parser.add_argument(
        "--compare-published",
        action="store_true",
        help="print the published success figures for the same methods and benchmarks: Meta-World only, "
        "none for MiniGrid (the MOORE paper's MiniGrid results were not available to transcribe) and none "
        "for --metric return",
    )
    parser.add_argument(
        "--html",
        action="store_true",
        help="also write report.html: the tables, the plots embedded and links to the runs' videos in one "
        "self-contained page that opens offline (copy it alone; the video links need the run directories)",
    )
    return parser.parse_args(args)


def main(args: list[str], console: Console | None = None) -> Report:
    """Run the command: read, check, aggregate, write, print."""
    options = parse_args(args)
    check_choice("--x", options.x, X_AXES)
    console = console or Console()
    groups = load_groups(options.run_dirs, options.group_by, options.metric, options.protocol)
    if options.x == "time":
        for group in groups:
            group.common_times()  # a one-line error, before anything is written, for runs without a clock
    check_out_dir(options.out)
    result = build_report(groups, options.reps, options.compare_published)
    written = write_report(options.out, result, options.reps, x=options.x, html=options.html)
    print_report(console, result)
    console.print(f"wrote {len(written)} files into {options.out}")
    return result


def expand_run_dirs(paths: list[Path]) -> list[Path]:
    """Run directories as given; a directory that holds run directories (a sweep's) stands for them."""
    expanded = []
    for path in map(Path, paths):
        inside = sorted(p.parent for p in path.glob("*/config.json")) if path.is_dir() else []
        expanded.extend(inside if inside and not (path / "config.json").exists() else [path])
    return expanded


def load_groups(
    run_dirs: list[Path],
    group_by: list[str] | None = None,
    metric: str = "success",
    protocol: str | None = None,
) -> list[Group]:
    runs: list[SeedRun] = []
    seen = set()
    for run_dir in expand_run_dirs(run_dirs):
        if Path(run_dir).resolve() in seen:
            raise ValueError(f"{run_dir} is given twice; each run directory counts once")
        seen.add(Path(run_dir).resolve())
        runs.extend(read_run_dir(run_dir, metric, protocol))
    return group_runs(runs, group_by)


def check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"report directory {out} already exists and is not empty; choose another --out "
            "(nothing was written)"
        )


def build_report(groups: list[Group], reps: int = 2000, compare_published: bool = False) -> Report:
    """Every group's aggregates, P(X > Y) for each pair on one benchmark, and the published comparison."""
    if reps < 1:
        raise ValueError(f"--reps must be >= 1, got {reps}")
    metrics = sorted({g.metric for g in groups}) or ["success"]
    if len(metrics) > 1:
        raise ValueError(f"groups read different metrics ({', '.join(metrics)}); a report aggregates one")
    metric = metrics[0]
    statistics = aggregates(metric)
    summaries = [
        Summary(
            g,
            {
                m: {name: stats.interval(g.scores(m), f, reps=reps) for name, f in statistics.items()}
                for m in MEASURES
            },
        )
        for g in groups
    ]
    improvements = []
    for gx, gy in itertools.combinations(groups, 2):
        if gx.benchmark == gy.benchmark:
            x, y = _comparable_scores(gx, gy)
            interval = stats.improvement_interval(x, y, reps=reps)
            improvements.append(Improvement(gx.label, gy.label, gx.benchmark, interval))
    notes = [
        f"{g.label}: per-task {metric} per seed was not logged; its statistics aggregate each seed's mean "
        "over tasks (one score per seed)"
        for g in groups
        if not g.per_task_scores
    ]
    if metric != "success":
        notes.append(
            "no optimality gap: it is the shortfall from a success of 1, and returns have no such target"
        )
    for g in groups:
        finals = sorted({int(r.steps[-1]) for r in g.runs})
        if len(finals) > 1:
            notes.append(f"{g.label}: seeds end at different steps per task ({', '.join(map(str, finals))})")
    rows, footnotes = [], []
    if compare_published and metric != "success":
        footnotes = ["--compare-published: the published figures are success rates; none are returns"]
    elif compare_published:
        rows, footnotes = published_comparison(summaries)
    return Report(summaries, improvements, rows, notes + footnotes, metric)


def published_comparison(summaries: list[Summary]) -> tuple[list[list[str]], list[str]]:
    """Rows of ours-beside-published for each group with a published counterpart, and footnotes."""
    rows, sources = [], []
    for summary in summaries:
        group = summary.group
        method = published.method_of(group.runs[0].config)
        for result in published.published_for(method, group.benchmark) if method else []:
            source = published.SOURCES[result.source]
            if source.name not in sources:
                sources.append(source.name)
            ours = summary.intervals[source.statistic]["mean"]
            theirs = f"{'≈' if result.approximate else ''}{result.success:.3f}"
            theirs += f" ± {result.spread:.3f}" if result.spread is not None else ""
            rows.append(
                [
                    group.label,
                    group.benchmark,
                    str(len(group.runs)),
                    f"{int(group.runs[0].steps[-1]):,}",
                    f"{interval_cell(ours)} ({source.statistic})",
                    f"{result.method}: {theirs}",
                    f"{source.name} [{sources.index(source.name) + 1}]",
                ]
            )
    if not rows:
        return [], ["--compare-published: no published figures for these agents and benchmarks"]
    footnotes = [f"[{i + 1}] {published.SOURCES[name].footnote()}" for i, name in enumerate(sources)]
    horizons = sorted(
        {_horizon(s.group.runs[0].config) for s in summaries if s.group.label in {r[0] for r in rows}}
    )
    footnotes.append(
        "ours: mean over seeds and tasks with a 95% bootstrap CI; success per task = fraction of its "
        "evaluation goals (all-goals protocol: each goal once, deterministic policy, success at any step of "
        "the episode), training goals resampled at every reset; steps per task and seeds as in the table "
        f"(the papers train 2M steps per task); horizon {' / '.join(horizons)} steps."
    )
    return rows, footnotes


def _horizon(config: dict) -> str:
    """The episode length a run trained with, from its flattened config (None: the benchmark's own)."""
    steps = config.get("env.max_episode_steps")
    return str(steps) if steps is not None else "500 (Meta-World's own)"


PUBLISHED_COLUMNS = ["group", "benchmark", "seeds", "steps/task", "ours (mean)", "published", "source"]


def summary_rows(summaries: list[Summary], measure: str) -> list[list[str]]:
    return [
        [
            s.group.label,
            s.group.benchmark,
            str(len(s.group.runs)),
            f"{int(max(r.steps[-1] for r in s.group.runs)):,}",
            *(interval_cell(interval) for interval in s.intervals[measure].values()),
        ]
        for s in summaries
    ]


def summary_columns(report: Report) -> list[str]:
    return ["group", "benchmark", "seeds", "steps/task", *report.statistics]


def write_report(out: Path, report: Report, reps: int, x: str = "steps", html: bool = False) -> list[Path]:
    """`report.md`, `summary.csv`, `per_task.csv`, `improvement.csv` and PNG plots (learning curves against
    `x`: steps or time) in `out`; with `html`, `report.html` too."""
    out.mkdir(parents=True, exist_ok=True)
    summaries, metric = report.summaries, report.metric
    written = [
        _write_csv(
            out / "summary.csv",
            ["group", "benchmark", "seeds", "measure", "statistic", "point", "ci_low", "ci_high"],
            [
                [s.group.label, s.group.benchmark, len(s.group.runs), m, name, *s.intervals[m][name]]
                for s in summaries
                for m in MEASURES
                for name in report.statistics
            ],
        ),
        _write_csv(
            out / "per_task.csv",
            ["group", "benchmark", "task", f"final_{metric}_mean", "seeds"],
            [
                [s.group.label, s.group.benchmark, task, value, len(s.group.runs)]
                for s in summaries
                for task, value in zip(s.group.task_names, s.group.task_means(), strict=True)
            ],
        ),
        _write_csv(
            out / "improvement.csv",
            ["group_x", "group_y", "benchmark", "p_x_beats_y", "ci_low", "ci_high"],
            [[i.x, i.y, i.benchmark, *i.interval] for i in report.improvements],
        ),
    ]
    written += _write_plots(out, report, reps, x)
    (out / "report.md").write_text(_markdown(report))
    written.append(out / "report.md")
    if html:
        from mtrl.report import html as report_html  # it imports this module: Report and the table rows

        written.append(report_html.write_html(out, report, [p for p in written if p.suffix == ".png"]))
    return written


def print_report(console: Console, report: Report) -> None:
    for measure in MEASURES:
        title = f"{measure.capitalize()} {report.metric} over seeds (95% stratified bootstrap CI)"
        console.print(_rich_table(title, summary_columns(report), summary_rows(report.summaries, measure)))
    if report.improvements:
        rows = [[i.x, i.y, i.benchmark, interval_cell(i.interval)] for i in report.improvements]
        title = f"Probability of improvement (final {report.metric})"
        console.print(_rich_table(title, ["X", "Y", "benchmark", "P(X > Y)"], rows))
    if report.published_rows:
        console.print(_rich_table("Ours beside published", PUBLISHED_COLUMNS, report.published_rows))
    for note in report.notes:
        console.print(note, highlight=False)


def _markdown(report: Report) -> str:
    lines = ["# mtrl report", ""]
    for s in report.summaries:
        sources = sorted({str(r.source) for r in s.group.runs})
        lines.append(
            f"- **{s.group.label}** ({s.group.benchmark}): {len(s.group.runs)} seeds "
            f"from {', '.join(sources)}"
        )
    for measure in MEASURES:
        lines += ["", f"## {measure.capitalize()} {report.metric} (95% stratified bootstrap CI)", ""]
        lines += _md_table(summary_columns(report), summary_rows(report.summaries, measure))
    for benchmark in dict.fromkeys(s.group.benchmark for s in report.summaries):
        same = [s.group for s in report.summaries if s.group.benchmark == benchmark]
        lines += ["", f"## Final {report.metric} per task, {benchmark} (mean over seeds)", ""]
        means = [g.task_means() for g in same]
        rows = [[task, *(f"{m[i]:.3f}" for m in means)] for i, task in enumerate(same[0].task_names)]
        lines += _md_table(["task", *(g.label for g in same)], rows)
    if report.improvements:
        lines += ["", f"## Probability of improvement, final {report.metric}", ""]
        rows = [[i.x, i.y, i.benchmark, interval_cell(i.interval)] for i in report.improvements]
        lines += _md_table(["X", "Y", "benchmark", "P(X > Y)"], rows)
    if report.published_rows:
        lines += ["", "## Ours beside published", ""]
        lines += _md_table(PUBLISHED_COLUMNS, report.published_rows)
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def _write_plots(out: Path, report: Report, reps: int, x: str) -> list[Path]:
    summaries, metric = report.summaries, report.metric
    written = []
    for benchmark in dict.fromkeys(s.group.benchmark for s in summaries):
        same = [s.group for s in summaries if s.group.benchmark == benchmark]
        tag = benchmark.replace(" ", "_")
        curves = {}
        for g in same:
            if x == "steps":
                points = g.common_steps()
                scores = g.curve_scores(points)
            else:
                points = g.common_times()
                scores = g.time_curve_scores(points)
                points = points / 60.0
            curves[g.label] = (points, stats.curve_intervals(scores, stats.iqm, reps=reps))
        name = f"curves_{tag}.png" if x == "steps" else f"curves_time_{tag}.png"
        title = f"{benchmark}: evaluation {metric}"
        written.append(plots.plot_curves(out / name, curves, title, metric, xlabel=X_AXES[x]))
        written.append(
            plots.plot_task_bars(
                out / f"task_{metric}_{tag}.png",
                list(same[0].task_names),
                {g.label: g.task_means() for g in same},
                f"{benchmark}: final {metric} per task",
                metric,
            )
        )
    for measure in MEASURES:
        intervals = {
            name: {s.group.label: s.intervals[measure][name] for s in summaries} for name in report.statistics
        }
        written.append(
            plots.plot_intervals(out / f"aggregates_{measure}.png", intervals, f"{measure} {metric}", metric)
        )
    return written


def _comparable_scores(gx: Group, gy: Group) -> tuple[np.ndarray, np.ndarray]:
    """Final scores of two groups at one granularity: per task if both have it, else per-seed means."""
    x, y = gx.scores("final"), gy.scores("final")
    if x.shape[1] != y.shape[1]:
        x, y = x.mean(axis=1, keepdims=True), y.mean(axis=1, keepdims=True)
    return x, y


def interval_cell(interval: stats.Interval) -> str:
    """`point [low, high]` to three decimals: one format for the terminal, report.md and report.html."""
    return f"{interval.point:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _rich_table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path
