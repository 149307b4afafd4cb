"""``idgraph report FILE.html``: the health report as a file, whose charts a real headless
Chromium draws (skipped, with the reason, where there is none)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from idgraph.cli import main
from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from tests.conftest import ERASURE_KEY
from tests.events import event

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHARTS = 7
# Appended to a copy of the page (which itself runs no script): per chart, its size on
# screen and how many of its shapes are painted in colour with a non-zero box: bars,
# legend keys, lines (white backgrounds, black axes and ticks do not count: a chart with
# no data paints none).
PROBE = """<script>
const charts = [...document.querySelectorAll('figure svg')].map((svg) => {
  const box = svg.getBoundingClientRect();
  const plain = ['none', 'rgb(255, 255, 255)', 'rgb(0, 0, 0)'];
  const painted = [...svg.querySelectorAll('path, rect')].filter((shape) => {
    if (shape.closest('defs')) return false;  // tick marks, drawn by reference
    const b = shape.getBBox();
    const style = getComputedStyle(shape);
    const coloured = !plain.includes(style.fill) || !plain.includes(style.stroke);
    return (b.width > 0 || b.height > 0) && coloured;
  }).length;
  return { width: box.width, height: box.height, painted };
});
document.body.dataset.charts = JSON.stringify(charts);
</script>"""


@pytest.fixture
async def store_url(tmp_path: Path, server_secret: str) -> str:
    """A store with something for every chart: merges, a refused link, consents,
    interactions of two types."""
    store = SqliteStore(tmp_path / "idgraph.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                "cookie:c1",
                interaction={"type": "page_view"},
                consent={"purpose": "marketing", "status": "granted"},
            ),
            event("email:b@x.com", "cookie:c2", interaction={"type": "purchase"}),
            event("email:c@x.com", consent={"purpose": "marketing", "status": "denied"}),
        ]
    )
    await graph.ingest([event("cookie:c1", "cookie:c2")])
    await graph.ingest([event("user_id:1", "cookie:c1")])
    await graph.ingest([event("user_id:2", "cookie:c1")])
    await store.close()
    return f"sqlite:///{tmp_path / 'idgraph.db'}"


def test_report_writes_a_self_contained_page(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "health.html"

    assert main(["--store", store_url, "report", str(out)]) == 0

    assert "wrote the health report" in capsys.readouterr().err
    page = out.read_text()
    assert page.count("<svg") == CHARTS
    assert "a@x.com" not in page
    assert "//" not in page.replace("<!doctype html>", "")


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"needs a Chromium at {CHROMIUM} (set CHROMIUM; Debian: apt install chromium)",
)
def test_a_headless_chromium_draws_every_chart(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "health.html"
    assert main(["--store", store_url, "report", str(out)]) == 0
    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text().replace("</body>", PROBE + "</body>"))

    dom = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout

    found = re.search(r'data-charts="([^"]*)"', dom)
    assert found, dom[-2000:]
    charts = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(charts) == CHARTS
    for chart in charts:
        assert chart["width"] > 300
        assert chart["height"] > 100
        assert chart["painted"] > 0, charts
