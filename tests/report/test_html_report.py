"""The self-contained HTML report: structure, offline-ness, and a real headless-browser check."""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from profiler import api
from profiler.analysis import scoring, scoring_io
from profiler.measure.plan import Sweep
from profiler.measure.session import EnergyOptions
from profiler.models.catalog import load_catalog
from profiler.report.html import render_html
from profiler.run.options import RunOptions

CATALOG = """
[[models]]
name = "tiny.gguf"
format = "gguf"
source = "{tiny}"
[[models.accuracy]]
metric = "hellaswag"
value = 30.0
n_shot = 0
source = "test fixture"
measured_on = "this file"

[[models]]
name = "tiny-tied.gguf"
format = "gguf"
source = "{tied}"
[[models.accuracy]]
metric = "hellaswag"
value = 25.0
n_shot = 0
source = "test fixture"
measured_on = "this file"
"""


@pytest.fixture(scope="module")
def report_run(tiny_gguf, tiny_gguf_tied, tmp_path_factory):
    work = tmp_path_factory.mktemp("html")
    options = RunOptions(reports_dir=work, bandwidth_probe=False, energy=EnergyOptions(idle_s=0), isolate=False)
    run = api.profile([str(tiny_gguf), str(tiny_gguf_tied)], Sweep(n_prompt=[16], n_gen=[8], n_threads=[1, 2],
                      repetitions=2), options)
    catalog_path = work / "models.toml"
    catalog_path.write_text(CATALOG.format(tiny=tiny_gguf, tied=tiny_gguf_tied))
    board = scoring_io.board(scoring.configurations(run.rows, run.run_id), "hellaswag", catalog=load_catalog(catalog_path))
    return run, board


@pytest.fixture(scope="module")
def report_html(report_run) -> str:
    return render_html(*report_run)


def _steady_rates(run):
    """The same run with fixed decode rates (100 t/s for the first model, 80 for the second), so
    the bar heights the browser test counts in pixels do not depend on this machine's speed."""
    names = list(dict.fromkeys(r.model_name for r in run.rows))
    steady = copy.copy(run)
    steady.rows = [dataclasses.replace(r, decode_ts=100.0 - 20 * names.index(r.model_name)) if r.decode_ts else r
                   for r in run.rows]
    return steady


def test_page_has_device_results_warnings_scores_and_the_plots(report_html):
    assert report_html.startswith("<!DOCTYPE html>")
    for heading in ("Device", "Results", "Scores", "Plots"):
        assert f"<h2>{heading}</h2>" in report_html
    assert report_html.count("<svg") == 5  # quality, threads, ladder, and the spread of pp16 and of tg8
    assert "tokens per second against threads" in report_html
    assert 'class="frontier"' in report_html or "(dominated)" in report_html
    assert report_html.count('class="bar"') == 2  # one bar per model file in the ladder
    assert "pp16" in report_html and "tg8" in report_html


def test_page_is_self_contained(report_html):
    assert "<script" not in report_html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report_html)
    assert "@import" not in report_html and "url(" not in report_html


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) into rows of pixels."""
    data = path.read_bytes()
    pos, chunks = 8, {}
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.setdefault(kind, []).append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and colour in (2, 6)
    bpp = 4 if colour == 6 else 3
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


@pytest.mark.browser
def test_headless_chromium_renders_the_plots_without_console_errors(report_run, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    run, board = report_run
    page = tmp_path / "report.html"
    page.write_text(render_html(_steady_rates(run), board))
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1200,1800", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    assert shot.exists() and shot.stat().st_size > 10_000
    width, bpp, rows = _png_pixels(shot)
    opaque = b"\xff" if bpp == 4 else b""

    def on_screen(hex_colour: str) -> int:
        pixel = bytes.fromhex(hex_colour) + opaque
        return sum(row.count(pixel) for row in rows)

    # the ladder's bars are solid rectangles in the first two series colours; the frontier green
    # fills the quality plot's best point
    assert on_screen("2563eb") > 500 and on_screen("dc2626") > 500
    assert on_screen("16a34a") > 20
