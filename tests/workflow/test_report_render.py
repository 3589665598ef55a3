"""pvc_core.report.render: the report's figures load in a real (headless) browser.

Tests that need Chromium take the ``chromium_path`` fixture (tests/conftest.py): skipped without
a Chromium, failed instead when DLPVC_REQUIRE_CHROMIUM=1 (CI, .ci/run). The error-path tests use
fake browsers and run everywhere.
"""

from __future__ import annotations

import struct
import time
import zlib
from base64 import b64encode
from pathlib import Path

import pytest

from pvc_core.report.render import ChromiumNotFound, RenderError, find_chromium, render_report


def _png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG, written from bytes."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + b"\xc0\x20\x20" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + b64encode(png).decode("ascii")


def _page(tmp_path: Path, body: str, title: str = "synthetic report") -> Path:
    path = tmp_path / "report.html"
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                    f"<body><h1>Figures</h1>{body}</body></html>", encoding="utf-8")
    return path


def test_broken_images_are_named(chromium_path, tmp_path):
    page = _page(tmp_path, f'<img alt="good figure" src="{_data_uri(_png())}">'
                           '<img alt="bad data" src="data:image/png;base64,AAAA">'
                           '<img src="nope.png">')
    result = render_report(page, chromium=chromium_path)
    assert result["images"] == 3
    assert result["title"] == "synthetic report"
    assert "good figure" not in result["broken"]
    assert "bad data" in result["broken"]
    assert "nope.png" in result["broken"]  # no alt: named by its src
    assert len(result["broken"]) == 2


def test_relative_lazy_and_truncated_images(chromium_path, tmp_path):
    """Relative links resolve against the report's own folder; a lazy image far below the fold is
    checked too (headless Chromium 156 loads it anyway; the check also makes lazy images eager);
    a PNG cut right after its header (a size, but no pixel data) counts as broken."""
    (tmp_path / "beside.png").write_bytes(_png())
    (tmp_path / "below.png").write_bytes(_png(5, 5))
    truncated = _png()[:33]  # signature + IHDR only
    page = _page(tmp_path, '<img alt="beside" src="beside.png">'
                           '<div style="height:20000px"></div>'
                           '<img alt="lazy" loading="lazy" src="below.png">'
                           f'<img alt="truncated" src="{_data_uri(truncated)}">')
    result = render_report(page, chromium=chromium_path)
    assert result == {"images": 3, "broken": ["truncated"], "title": "synthetic report"}


def test_missing_chromium_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DLPVC_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert find_chromium() is None
    with pytest.raises(ChromiumNotFound, match="DLPVC_CHROMIUM=.*is not an executable"):
        render_report(_page(tmp_path, ""))


def test_missing_html_file(tmp_path):
    with pytest.raises(RenderError, match="no such HTML file"):
        render_report(tmp_path / "absent.html", chromium="/bin/true")


def _fake_browser(tmp_path: Path, script: str) -> str:
    exe = tmp_path / "fake-chromium"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return str(exe)


def test_timeout_kills_the_browser_and_its_helpers(tmp_path):
    exe = _fake_browser(tmp_path, "sleep 60 &\nsleep 60\n")  # a helper that would keep pipes open
    t0 = time.monotonic()
    with pytest.raises(RenderError, match=r"did not finish rendering report\.html within 1 s"):
        render_report(_page(tmp_path, ""), timeout_s=1, chromium=exe)
    assert time.monotonic() - t0 < 15


def test_no_summary_names_the_browser_error(tmp_path):
    exe = _fake_browser(tmp_path, "echo '[1:1:ERROR:dbus/bus.cc] noise' >&2\necho 'cannot open display' >&2\nexit 3\n")
    with pytest.raises(RenderError, match=r"no render summary .*exit code 3, cannot open display\)"):
        render_report(_page(tmp_path, ""), chromium=exe)
