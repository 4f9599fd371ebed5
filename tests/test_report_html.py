"""`mtrl report --html`: the page against the Report it renders, and the page as headless Chromium loads it.

The runs are real run directories written as tests/test_report.py writes them. The browser tests need
Chromium (`apt-get install chromium`): CI installs it, so there they fail without it; elsewhere they skip.
"""

import base64
import dataclasses
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from helpers import TASKS, write_run
from mtrl.agents import mt_sac
from PIL import Image

from mtrl.app import report as app_report
from mtrl.report import html as report_html

LABELS = ["mt_sac agent.hidden_sizes=400x400x400", "mt_sac agent.hidden_sizes=64x64"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
BROWSER_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    """`mtrl report --html` of two groups of three seeds that differ only in agent.hidden_sizes, with a
    GIF in one run directory: (out dir, the Report, the GIF)."""
    root = tmp_path_factory.mktemp("html-report")
    rng = np.random.default_rng(8)
    dirs = []
    for name, agent in (("wide", mt_sac.Config()), ("narrow", mt_sac.Config(hidden_sizes=(64, 64)))):
        for seed in range(3):
            final = rng.uniform(0.0, 1.0, 4)
            dirs.append(write_run(root / f"{name}-{seed}", agent, seed, [0.5 * final, final]))
    gif = write_gif(dirs[0] / "videos" / "step-2000" / "reach.gif")
    (gif.parent / "episodes.json").write_text("[]")  # beside the videos, not one
    write_gif(dirs[0] / "videos" / "step-2000-2" / "reach.gif")  # the same step filmed again
    out = root / "out"
    report = app_report.main([*map(str, dirs), "--out", str(out), "--reps", "200", "--html"])
    return out, report, gif


def write_gif(path: Path) -> Path:
    """A real three-frame 8x8 GIF, as a rendered episode would be."""
    path.parent.mkdir(parents=True)
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


# --- the page's content, parsed with the standard library ---------------------------------------------


class ElementTreeParser(HTMLParser):
    """html.parser events into an ElementTree, to query the page (and Chromium's serialised DOM, which is
    HTML, not XML) with `find(".//table[@id='summary-final']")`. Mis-nested tags fail TreeBuilder's check."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.builder = ET.TreeBuilder()
        self.builder.start("document", {})

    def handle_starttag(self, tag, attrs):
        self.builder.start(tag, {name: value or "" for name, value in attrs})
        if tag in self.VOID:
            self.builder.end(tag)

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.builder.end(tag)

    def handle_data(self, data):
        self.builder.data(data)


def parse_html(text: str) -> ET.Element:
    parser = ElementTreeParser()
    parser.feed(text)
    parser.close()
    parser.builder.end("document")
    return parser.builder.close()


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext()).strip()


def table(page: ET.Element, table_id: str) -> tuple[list[ET.Element], list[tuple[str | None, list[str]]]]:
    """A table's header cells and its body rows as (data-group, cell texts)."""
    found = page.find(f".//table[@id='{table_id}']")
    assert found is not None, f"no table #{table_id}"
    head = found.findall("./thead/tr/th")
    rows = [
        (tr.get("data-group"), [text_of(td) for td in tr.findall("td")]) for tr in found.findall("./tbody/tr")
    ]
    return head, rows


def formatted(interval) -> str:
    """An interval as the page should show it, written out here rather than taken from mtrl."""
    return f"{interval.point:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def test_html_report_holds_the_reports_numbers_plots_config_differences_and_videos(html_report):
    out, report, gif = html_report
    page = parse_html((out / "report.html").read_text(encoding="utf-8"))
    assert [s.group.label for s in report.summaries] == LABELS
    assert [li.get("data-group") for li in page.findall(".//ul[@id='groups']/li")] == LABELS

    for measure in ("final", "best"):
        head, rows = table(page, f"summary-{measure}")
        assert [text_of(th) for th in head][4:] == ["IQM", "mean", "median", "optimality gap"]
        assert [group for group, _ in rows] == LABELS
        for (_, cells), summary in zip(rows, report.summaries, strict=True):
            assert cells[:3] == [summary.group.label, "MT10", "3"]
            assert cells[4:] == [formatted(i) for i in summary.intervals[measure].values()]

    head, rows = table(page, "per-task-mt10")
    assert [th.get("data-group") for th in head] == [None, *LABELS]
    means = [s.group.task_means() for s in report.summaries]
    expected = [[task, *(f"{m[k]:.3f}" for m in means)] for k, task in enumerate(TASKS)]
    assert rows == [(None, row) for row in expected]
    [(_, improvement)] = table(page, "improvement")[1]
    assert improvement == [*LABELS, "MT10", formatted(report.improvements[0].interval)]

    # write_run sets wandb.project to the seed: the same values in both groups, so it is no difference
    head, rows = table(page, "config-diff")
    assert [th.get("data-group") for th in head] == [None, *LABELS]
    assert rows == [(None, ["agent.hidden_sizes", "400x400x400", "64x64"])]

    # every plot is inside the page, byte for byte; nothing else is loaded but the videos
    plots = {figure.get("data-file"): figure.find("img").get("src") for figure in page.iter("figure")}
    assert set(plots) == {path.name for path in out.glob("*.png")} and len(plots) == 4
    for name, src in plots.items():
        prefix, data = src.split(",", 1)
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(data).startswith(PNG_SIGNATURE)
        assert base64.b64decode(data) == (out / name).read_bytes()

    run = [LABELS[0], str(gif.parents[2])]
    assert table(page, "videos")[1] == [
        (LABELS[0], [*run, "2,000", "reach", "gif"]),
        (LABELS[0], [*run, "2,000 #2", "reach", "gif"]),
    ]
    videos = page.find(".//table[@id='videos']")
    links = [a.get("href") for a in videos.iter("a")]
    again = gif.parents[1] / "step-2000-2" / "reach.gif"
    assert [(out / unquote(href)).resolve() for href in links] == [gif.resolve(), again.resolve()]
    assert [img.get("src") for img in videos.iter("img")] == links  # the GIFs also play inline
    outside = [e.get("src") or e.get("href") for e in page.iter() if e.tag in ("img", "a", "link", "script")]
    assert sorted(u for u in outside if not u.startswith("data:")) == sorted(links * 2)
    assert page.find(".//script") is None


def test_html_escapes_text_and_says_when_there_is_one_group(html_report, tmp_path):
    _, report, _ = html_report
    label = '<b class="x">moore</b> & "co"'
    narrow = report.summaries[1]  # the group without videos
    only = dataclasses.replace(narrow, group=dataclasses.replace(narrow.group, label=label))
    note = "<script>alert('note')</script>"
    lone = dataclasses.replace(report, summaries=[only], improvements=[], notes=[note])
    page = parse_html(report_html.render(lone, [], tmp_path))
    assert page.find(".//b") is None and page.find(".//script") is None
    assert [li.get("data-group") for li in page.findall(".//ul[@id='groups']/li")] == [label]
    assert table(page, "summary-final")[1][0][1][0] == label
    assert [text_of(li) for li in page.findall(".//ul[@id='notes']/li")] == [note]
    assert text_of(page.find(".//p[@id='config-diff']")) == "Only one group: there is nothing to compare."
    assert text_of(page.find(".//p[@id='videos']")).startswith("No videos")


# --- the page in headless Chromium --------------------------------------------------------------------


def chromium() -> str:
    """The Chromium binary: CI installs one, so its absence fails there and skips elsewhere."""
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail(f"no Chromium on PATH ({', '.join(CHROMIUM_NAMES)}); CI must install it")
    pytest.skip("no Chromium on PATH; apt-get install chromium")


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile, its log (the page's console included) on stderr."""
    command = [
        chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def console_messages(stderr: str) -> list[str]:
    """The page's console messages in Chromium's log. Chromium 156 logs every console level alike, e.g.
    `[pid:tid:time:INFO:CONSOLE:2] "x", source: file:///page.html (2)` for console.log, .warn and .error,
    and `"Uncaught Error: boom"` for a throw (older versions: `INFO:CONSOLE(2)`): the level cannot tell an
    error from a log, so a page without scripts must log nothing at all."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def test_chromium_loads_the_report_without_console_messages(html_report, tmp_path):
    out, report, _ = html_report
    result = run_chromium(tmp_path / "profile", "--dump-dom", (out / "report.html").as_uri())
    assert console_messages(result.stderr) == []
    dom = parse_html(result.stdout)
    _, rows = table(dom, "summary-final")
    assert [group for group, _ in rows] == LABELS
    assert rows[0][1][4] == formatted(report.summaries[0].intervals["final"]["IQM"])
    assert table(dom, "config-diff")[1] == [(None, ["agent.hidden_sizes", "400x400x400", "64x64"])]
    assert len([i for i in dom.iter("img") if i.get("src", "").startswith("data:image/png;base64,")]) == 4


def test_console_check_catches_console_errors_and_uncaught_exceptions(tmp_path):
    page = tmp_path / "probe.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>probe</title></head><body>"
        '<script>console.error("mtrl-probe-error")</script>'
        '<script>throw new Error("mtrl-probe-throw")</script></body></html>'
    )
    messages = console_messages(run_chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stderr)
    assert [m for m in messages if '"mtrl-probe-error"' in m], messages
    assert [m for m in messages if '"Uncaught Error: mtrl-probe-throw"' in m], messages


def test_chromium_screenshot_of_the_report_shows_the_plots(html_report, tmp_path):
    out, _, _ = html_report
    screenshot = tmp_path / "report.png"
    run_chromium(
        tmp_path / "profile",
        f"--screenshot={screenshot}",
        "--window-size=1280,2000",
        (out / "report.html").as_uri(),
    )
    keep_artefact(screenshot)
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)
    assert pixels.shape == (2000, 1280, 3)
    colours = np.unique((pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2])
    assert len(colours) > 16  # text, table lines and plots, not one colour
    assert (pixels < 250).any(axis=2).mean() > 0.01  # not blank white
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 100  # the text is grey; the plots' lines are not
    assert saturated.sum() > 1000, "no coloured pixels: the embedded plots did not render"


def keep_artefact(path: Path) -> None:
    """Copy `path` into $MTRL_TEST_ARTEFACTS (CI uploads it), else say where it is."""
    folder = os.environ.get("MTRL_TEST_ARTEFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
    else:
        print(f"screenshot: {path}")
