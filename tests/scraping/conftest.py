"""Fixtures for the scraping tests: the local MediaWiki stand-in and running a stage as a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scraping.wiki_server import CORRUPT, SVG, WikiServer, jpeg_bytes, maxlag_body, noise_png, png_bytes

REPO = Path(__file__).resolve().parents[2]
CONTACT = "tests@example.org"
# Fast but still throttled: AutoThrottle starts at 0.1 s instead of 1 s; everything else as shipped.
FAST = ["-s", "AUTOTHROTTLE_START_DELAY=0.1"]


def run_stage(*args: str, cwd: Path = REPO, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m <args>`` in the checkout, as a user would run it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LOGOGAN_CONTACT", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def wiki():
    """The small category tree: every fault and edge case once."""
    server = WikiServer()
    server.add_file("a.png", png_bytes(1), "image/png")
    server.add_file("b.jpg", jpeg_bytes(), "image/jpeg")
    server.add_file("c.svg", SVG, "image/svg+xml")
    server.add_file("d-corrupt.png", CORRUPT, "image/png")
    server.add_file("e-big.png", noise_png(64), "image/png")
    server.add_file("f-same-as-a.png", png_bytes(1), "image/png")
    server.add_file("g.pdf", b"%PDF-1.4 tiny", "application/pdf")
    server.add_file("h.png", png_bytes(2), "image/png")
    server.add_file("i-flaky.png", png_bytes(3), "image/png")
    server.add_file("j.png", png_bytes(4), "image/png")
    server.add_file("k-too-deep.png", png_bytes(5), "image/png")
    server.add_category("Category:Test logos", files=["a.png", "b.jpg", "c.svg", "d-corrupt.png", "e-big.png",
                                                      "f-same-as-a.png", "g.pdf"],
                        subcats=["Category:Test logos/sub"])
    # The sub-category links back to its parent: a cycle the spider must not follow twice.
    server.add_category("Category:Test logos/sub", files=["h.png", "i-flaky.png"],
                        subcats=["Category:Test logos/deep", "Category:Test logos"])
    server.add_category("Category:Test logos/deep", files=["j.png"], subcats=["Category:Test logos/deeper"])
    server.add_category("Category:Test logos/deeper", files=["k-too-deep.png"])
    server.fail_first("files:Category:Test logos:3", 429, {"Retry-After": "1"})
    server.fail_first("subcats:Category:Test logos", 200, {"Retry-After": "1"}, maxlag_body())
    server.fail_first("/thumb/120px-i-flaky.png", 500)
    server.fail_first("/thumb/120px-h.png", 429, {"Retry-After": "1"})
    with server:
        yield server
