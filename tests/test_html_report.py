"""The HTML report (reports/html.py): one self-contained page that escapes what the run says,
rendered by a real browser (Debian's headless Chromium, run in a network namespace of its own
with nothing but a loopback that is down: it cannot fetch anything, and must not need to)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from netcheck.model.findings import Finding, Severity
from netcheck.reports.html import to_html
from tests.test_reports import dropped_7001, report

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps",
)  # fmt: skip


class Cells(HTMLParser):
    """Heatmap cells of a page (or of Chromium's DOM): (port, src, dst, state)."""

    def __init__(self) -> None:
        super().__init__()
        self.port = ""
        self.cells: set[tuple[str, str, str, str]] = set()
        self.tags: list[str] = []
        self.fetching: list[tuple[str, str]] = []  # attributes that would load something

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        self.fetching += [(tag, k) for k in a if k in ("src", "href", "srcset", "action")]
        if tag == "svg" and "heatmap" in (a.get("class") or ""):
            self.port = a.get("data-port") or ""
        if tag == "rect" and "cell" in (a.get("class") or ""):
            self.cells.add(
                (self.port, a["data-src"] or "", a["data-dst"] or "", a["data-state"] or "")
            )


def cells_of(page: str) -> set[tuple[str, str, str, str]]:
    parser = Cells()
    parser.feed(page)
    return parser.cells


EAST = {"CP_EAST/dc1/r1", "CP_EAST/dc1/r2"}
WEST = {"DP_WEST/dc2/r1", "DP_WEST/dc2/r2"}


def failing_7001() -> set[tuple[str, str, str, str]]:
    cross = {(s, d) for s in EAST for d in WEST} | {(s, d) for s in WEST for d in EAST}
    return {("7001", s, d, "fail") for s, d in cross}


def test_the_heatmap_marks_the_failing_rack_pairs_and_only_those():
    cells = cells_of(to_html(report(dropped_7001)))
    assert {c for c in cells if c[3] == "fail"} == failing_7001()
    assert len(cells) == 3 * 16  # three ports, 4 x 4 rack pairs each
    assert {c[3] for c in cells if c[0] != "7001"} == {"pass"}


def test_the_page_is_self_contained_and_escapes_what_the_run_says():
    """What agents, nodetool or a kubeconfig put into a report reaches the page as text: a
    finding that carries markup shows it, it does not run it; nothing is fetched."""
    base = report(dropped_7001)
    hostile = Finding(
        severity=Severity.ERROR,
        code="PORT_TIMEOUT",
        summary='<script>alert("x")</script><img src=x onerror=alert(1)>',
        src_cluster="CP_EAST",
        dst_cluster="DP_WEST",
        ports=(7001,),
        affected_pairs=1,
        hint="</div><a href='https://example.invalid'>",
    )
    page = to_html(dataclasses.replace(base, findings=(hostile,), problems=("<b>agent</b>",)))
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;/div&gt;&lt;a href=&#39;https://example.invalid&#39;&gt;" in page
    assert "&lt;b&gt;agent&lt;/b&gt;" in page
    parser = Cells()
    parser.feed(page)
    assert not set(parser.tags) & {"script", "img", "link", "iframe", "object", "embed", "a"}
    assert not parser.fetching, parser.fetching
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "url(" not in style and "@import" not in style


def chromium(*args: str) -> subprocess.CompletedProcess[bytes]:
    browser = shutil.which("chromium")
    assert browser, "chromium is installed by `make install` (Debian package chromium)"
    assert os.geteuid() == 0, "run as root: the browser gets a network namespace of its own"
    return subprocess.run(
        ["unshare", "--net", browser, *CHROMIUM_FLAGS, *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


@pytest.mark.parametrize(("width", "height"), [(1100, 1600), (390, 1400)])
def test_headless_chromium_renders_the_report_with_its_heatmap(tmp_path, width, height):
    """A desktop and a phone-sized window: the page renders, and the DOM Chromium built has
    the heatmaps with exactly the failing rack pairs marked and the verdict."""
    page = tmp_path / "report.html"
    page.write_text(to_html(report(dropped_7001)), encoding="utf-8")
    shot = tmp_path / "shot.png"
    size = f"--window-size={width},{height}"
    done = chromium(size, f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr.decode()[-2000:]
    assert png_size(shot) == (width, height) and shot.stat().st_size > 10_000
    dom = chromium(size, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    text = dom.stdout.decode()
    assert {c for c in cells_of(text) if c[3] == "fail"} == failing_7001()
    assert 'id="verdict">fail<' in text


def test_print_layout_is_there() -> None:
    page = to_html(report())
    assert "@media print" in page and 'name="viewport"' in page
    assert {c[3] for c in cells_of(page)} == {"pass"}
