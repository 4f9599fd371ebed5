"""`report.html`: a `mtrl report` as one self-contained page, to share results without W&B or a notebook.

Everything the page shows travels inside the file: the PNG plots as base64 data URIs, the CSS inline, and no
script, so it opens offline and still works when copied alone. The only outside references are the links to
the runs' videos (`RUN_DIR/videos/step-<N>/<task>.mp4` or `.gif`), relative to the report directory so that
they keep working when the report and run directories move together. Every text goes through `html.escape`:
group labels, notes and config values come from user configs.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path
from urllib.parse import quote

from mtrl.app.report import (
    MEASURES,
    PUBLISHED_COLUMNS,
    Report,
    interval_cell,
    summary_columns,
    summary_rows,
)
from mtrl.report.runs import Group

CONFIG_DIFF_SKIPPED = frozenset({"seed", "run_dir"})
"""Config fields that differ between any two runs, so they would say nothing about the groups."""
VIDEO_SUFFIXES = (".mp4", ".gif")
VIDEO_DIR = re.compile(r"step-(\d+)(?:-(\d+))?")
"""The names `mtrl.video.new_video_dir` gives: step-<step>, then step-<step>-2, ... when filmed again."""
NOT_SET = "(not set)"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; }
body { max-width: 1240px; margin: 1.5em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
figure { margin: 1em 0; }
img { max-width: 100%; }
figcaption { color: #666; font-size: 12px; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<link rel="icon" href="data:,"/>
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
</body>
</html>
"""


def write_html(out: Path, report: Report, images: list[Path]) -> Path:
    """Write `out/report.html` with the PNG files `images` embedded; its path (for the written-files list)."""
    path = Path(out) / "report.html"
    path.write_text(render(report, images, Path(out)), encoding="utf-8")
    return path


def render(report: Report, images: list[Path], out: Path) -> str:
    """The page's text; `out`, the directory it is written to, anchors the videos' relative links."""
    groups = [s.group for s in report.summaries]
    benchmarks = ", ".join(dict.fromkeys(g.benchmark for g in groups))
    parts = [_text("h1", f"mtrl report: {report.metric}, {benchmarks}"), _groups_list(report)]
    for measure in MEASURES:
        parts.append(_text("h2", f"{measure.capitalize()} {report.metric} (95% stratified bootstrap CI)"))
        rows = summary_rows(report.summaries, measure)
        parts.append(_table(f"summary-{measure}", summary_columns(report), rows, [r[0] for r in rows]))
    parts += _per_task_tables(report)
    if report.improvements:
        parts.append(_text("h2", f"Probability of improvement, final {report.metric}"))
        rows = [[i.x, i.y, i.benchmark, interval_cell(i.interval)] for i in report.improvements]
        parts.append(_table("improvement", ["X", "Y", "benchmark", "P(X > Y)"], rows))
    if report.published_rows:
        parts.append(_text("h2", "Ours beside published"))
        rows = report.published_rows
        parts.append(_table("published", PUBLISHED_COLUMNS, rows, [r[0] for r in rows]))
    parts += [_text("h2", "Config differences between groups"), _config_diff(groups)]
    parts += [_text("h2", "Plots"), *(_figure(path) for path in images)]
    parts += [_text("h2", "Videos"), _videos(groups, out)]
    if report.notes:
        parts += [_text("h2", "Notes"), _list("notes", report.notes)]
    title = html.escape(f"mtrl report: {benchmarks}")
    return PAGE.format(title=title, css=CSS, body="\n".join(parts))


def slug(text: str) -> str:
    """Lower-case letters and digits joined by hyphens: an id from a benchmark name ("MT10" -> "mt10")."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _groups_list(report: Report) -> str:
    items = []
    for s in report.summaries:
        sources = ", ".join(sorted({str(r.source) for r in s.group.runs}))
        items.append(
            f'<li data-group="{html.escape(s.group.label)}"><strong>{html.escape(s.group.label)}</strong> '
            f"({html.escape(s.group.benchmark)}): {len(s.group.runs)} seeds from {html.escape(sources)}</li>"
        )
    return '<ul id="groups">\n' + "\n".join(items) + "\n</ul>"


def _per_task_tables(report: Report) -> list[str]:
    """One table per benchmark, a column per group: the rows of report.md's per-task tables."""
    parts = []
    for benchmark in dict.fromkeys(s.group.benchmark for s in report.summaries):
        same = [s.group for s in report.summaries if s.group.benchmark == benchmark]
        means = [g.task_means() for g in same]
        rows = [[task, *(f"{m[i]:.3f}" for m in means)] for i, task in enumerate(same[0].task_names)]
        labels = [g.label for g in same]
        parts.append(_text("h2", f"Final {report.metric} per task, {benchmark} (mean over seeds)"))
        parts.append(
            _table(f"per-task-{slug(benchmark)}", ["task", *labels], rows, column_groups=[None, *labels])
        )
    return parts


def config_differences(groups: list[Group]) -> dict[str, list[str]]:
    """Each config field whose shown values differ between groups, with each group's values ("a / b" where
    the group's seeds differ, as with --group-by); seed and run_dir are left out."""
    fields = sorted({f for g in groups for r in g.runs for f in r.config} - CONFIG_DIFF_SKIPPED)
    differences = {}
    for field in fields:
        values = [" / ".join(dict.fromkeys(_config_value(r.config, field) for r in g.runs)) for g in groups]
        if len(set(values)) > 1:
            differences[field] = values
    return differences


def _config_value(config: dict, field: str) -> str:
    """A value as group labels show it (tuples as 400x400x400), or that the run's config lacks the field."""
    if field not in config:
        return NOT_SET
    value = config[field]
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _config_diff(groups: list[Group]) -> str:
    if len(groups) < 2:
        return _text("p", "Only one group: there is nothing to compare.", {"id": "config-diff"})
    differences = config_differences(groups)
    if not differences:
        return _text("p", "No config field differs between the groups.", {"id": "config-diff"})
    labels = [g.label for g in groups]
    rows = [[field, *values] for field, values in differences.items()]
    return _table("config-diff", ["field", *labels], rows, column_groups=[None, *labels])


def _figure(path: Path) -> str:
    """A PNG inlined as a data URI: the page needs no file beside it."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name = html.escape(Path(path).name)
    return (
        f'<figure class="plot" data-file="{name}"><img src="data:image/png;base64,{data}" alt="{name}"/>'
        f"<figcaption>{name}</figcaption></figure>"
    )


def video_files(group: Group) -> list[tuple[Path, str, str, list[Path]]]:
    """`(run dir, step, task, files)` for each video in the group's run directories, by run, step and task:
    `step` reads "2,000", or "2,000 #2" for a second filming of that step; `files`, the formats present."""
    found: dict[tuple[Path, int, int, str], list[Path]] = {}
    for run_dir in dict.fromkeys(Path(r.source) for r in group.runs):
        for file in run_dir.glob("videos/step-*/*"):
            name = VIDEO_DIR.fullmatch(file.parent.name)
            if name and file.suffix in VIDEO_SUFFIXES and file.is_file():
                found.setdefault((run_dir, int(name[1]), int(name[2] or 1), file.stem), []).append(file)
    return [
        (run_dir, f"{step:,}" + (f" #{take}" if take > 1 else ""), task, sorted(files, key=_format_order))
        for (run_dir, step, take, task), files in sorted(found.items())
    ]


def _format_order(file: Path) -> int:
    return VIDEO_SUFFIXES.index(file.suffix)


def _videos(groups: list[Group], out: Path) -> str:
    rows = []
    for group in groups:
        for run_dir, step, task, files in video_files(group):
            links = " ".join(_video_link(file, out) for file in files)
            cells = [
                html.escape(group.label),
                html.escape(str(run_dir)),
                html.escape(step),
                html.escape(task),
                links,
            ]
            rows.append(_row(cells, "td", group.label))
    if not rows:
        message = "No videos in these run directories (RUN_DIR/videos/step-<N>/<task>.mp4 or .gif)."
        return _text("p", message, {"id": "videos"})
    head = _row([html.escape(c) for c in ("group", "run", "step", "task", "video")], "th")
    return _wrap_table("videos", head, rows)


def _video_link(file: Path, out: Path) -> str:
    """A link to a video relative to the report directory; a GIF also plays inline."""
    href = html.escape(quote(Path(os.path.relpath(file, out)).as_posix()))
    link = f'<a href="{href}">{html.escape(file.suffix[1:])}</a>'
    if file.suffix == ".gif":
        link += f'<br/><img src="{href}" alt="{html.escape(file.name)}"/>'
    return link


def _table(
    table_id: str,
    columns: list[str],
    rows: list[list[str]],
    row_groups: list[str] | None = None,
    column_groups: list[str | None] | None = None,
) -> str:
    """A table of text cells; `row_groups[i]` (`column_groups[j]`) names the group of row i (column j), set
    as its data-group attribute so that a reader or a test finds a group's numbers by its label."""
    head_cells = [
        _text("th", column, {"data-group": group} if group else None)
        for column, group in zip(columns, column_groups or [None] * len(columns), strict=True)
    ]
    head = "<tr>" + "".join(head_cells) + "</tr>"
    body = [
        _row([html.escape(cell) for cell in row], "td", group)
        for row, group in zip(rows, row_groups or [None] * len(rows), strict=True)
    ]
    return _wrap_table(table_id, head, body)


def _wrap_table(table_id: str, head: str, body: list[str]) -> str:
    return (
        f'<table id="{html.escape(table_id)}">\n<thead>{head}</thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def _row(cells_html: list[str], tag: str, group: str | None = None) -> str:
    """A table row of cells already escaped (or built of escaped parts)."""
    attributes = _attributes({"data-group": group} if group else None)
    return f"<tr{attributes}>" + "".join(f"<{tag}>{cell}</{tag}>" for cell in cells_html) + "</tr>"


def _list(list_id: str, items: list[str]) -> str:
    return f'<ul id="{html.escape(list_id)}">\n' + "\n".join(_text("li", item) for item in items) + "\n</ul>"


def _text(tag: str, text: str, attributes: dict[str, str] | None = None) -> str:
    return f"<{tag}{_attributes(attributes)}>{html.escape(text)}</{tag}>"


def _attributes(attributes: dict[str, str] | None) -> str:
    return "".join(f' {name}="{html.escape(value)}"' for name, value in (attributes or {}).items())
