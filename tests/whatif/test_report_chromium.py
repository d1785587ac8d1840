"""The HTML report in headless Chromium: no console messages, the charts drawn, a non-blank screenshot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamproc.cli import main
from tests.whatif.chromium import run
from tests.whatif.scenario import write

CHARTS = ("pages-over-time", "time-to-first-page", "pages-by-hour", "pages-by-user")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    base, new, events = write(tmp)
    html = tmp / "report.html"
    assert (
        main(
            [
                "whatif",
                "--baseline",
                str(base),
                "--config",
                str(new),
                "--input",
                str(events),
                "--html",
                str(html),
                "--json",
            ]
        )
        == 0
    )
    return html


def test_the_report_renders_its_charts_without_console_errors(report: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    text = report.read_text()
    assert "<script src=" not in text  # plotly.js is inlined: works offline
    png = tmp_path / "report.png"
    page = run(report, png)
    assert page.console == []
    for chart in CHARTS:
        # plotly drew it: the container holds the rendered SVG (absent from the HTML file itself)
        block = re.search(rf'<div id="{chart}"[^>]*class="[^"]*js-plotly-plot[^"]*"', page.dom)
        assert block, chart
    assert page.dom.count('class="main-svg"') >= 2 * len(CHARTS)
    assert 'class="main-svg"' not in text
    image = Image.open(png).convert("L")
    assert image.size == (1280, 2600)
    stat = ImageStat.Stat(image)
    assert stat.stddev[0] > 10  # not a blank page
    colours = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # charts, not just text


def test_a_console_error_would_be_seen(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<html><body><div id='x'></div><script>document.getElementById('x').nope()</script></body></html>"
    )
    page = run(broken)
    assert any("nope is not a function" in line for line in page.console), page.console
