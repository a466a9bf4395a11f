"""The HTML report opens in headless Chromium: no console errors, every table in the rendered DOM,
every figure decoded, and a screenshot written.

Built from the hand-made fixture metrics of test_report.py (every section present, no pipeline run
needed). Skips only when no Chromium binary is installed (`apt-get install -y chromium`).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from test_report import build, make_fixture_metrics

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium is not installed (Debian: apt-get install -y chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           *extra, page.as_uri()], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("report_html")
    make_fixture_metrics(root)
    md, html = build(root)
    path = root / "reports" / "report.html"
    path.write_text(html, encoding="utf-8")
    return path, md


@pytest.fixture(scope="module")
def dom(page, tmp_path_factory) -> tuple[str, str]:
    proc = chromium(page[0], tmp_path_factory.mktemp("chromium-profile"), "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def test_every_table_is_in_the_rendered_dom(page, dom):
    html_ids = re.findall(r'<table id="([^"]+)"', page[0].read_text(encoding="utf-8"))
    dom_ids = re.findall(r'<table id="([^"]+)"', dom[0])
    assert dom_ids == html_ids and len(dom_ids) == len(re.findall(r"^\|---", page[1], re.M))
    for section in ("dataset", "baselines", "backbones", "quantization", "distillation", "accuracy-latency",
                    "cached-timing", "device-speed", "ner", "lcqmc", "provenance"):
        assert f'<section id="{section}">' in dom[0]
    assert "Person Name" in dom[0] and "ALBERT-xlarge" in dom[0]


def test_no_console_or_script_errors(dom):
    assert "<script" not in dom[0].lower()
    # Chromium logs page errors as CONSOLE(...) / "Uncaught" lines on stderr with --enable-logging
    bad = [line for line in dom[1].splitlines() if "CONSOLE" in line or "Uncaught" in line
           or "Failed to load resource" in line or "net::ERR" in line]
    assert not bad, "\n".join(bad)


def test_every_figure_is_inlined(page, dom):
    assert dom[0].count("<img ") == page[1].count("![") > 0
    assert 'class="missing"' not in dom[0]
    assert not re.search(r'<img [^>]*src="(?!data:image/png;base64,)', dom[0])


def test_screenshot(page, tmp_path_factory):
    shot = page[0].parent / "report.png"
    proc = chromium(page[0], tmp_path_factory.mktemp("chromium-profile"), f"--screenshot={shot}",
                    "--window-size=1280,4000", "--hide-scrollbars")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 4000)
    assert len(data) > 50_000  # a blank page compresses to a few kB; the report is text, tables, plots
