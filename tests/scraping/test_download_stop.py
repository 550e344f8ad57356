"""Stopping a download (Ctrl-C, SIGTERM) mid-run: it ends at once, and every file kept so far stays in the
manifest, so the next run resumes instead of fetching them again."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.scraping.conftest import REPO, run_stage
from tests.scraping.wiki_server import png_bytes

FAST = 3  # images served at once, before the ones that hang
HANGING = 6


class HangingServer:
    """Serves /fast/N.png at once; /hang/N.png sends its headers and then nothing, until the test ends."""

    def __init__(self):
        self.released = threading.Event()
        self.hanging = threading.Semaphore(0)  # one release per request that started hanging
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                kind, name = self.path.strip("/").split("/")
                body = png_bytes(int(name.split(".")[0]) + 1)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body) if kind == "fast" else 100_000))
                self.end_headers()
                if kind == "fast":
                    self.wfile.write(body)
                    return
                self.wfile.flush()
                server.hanging.release()
                server.released.wait(60)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self.released.set()
        self.http.shutdown()
        self.http.server_close()


def kept_files(out):
    return sorted(path.name for path in out.iterdir() if path.suffix == ".png" and not path.name.startswith("."))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_download_ends_at_once_and_keeps_its_manifest(tmp_path, stop):
    with HangingServer() as server:
        fast = [f"{server.base}/fast/{index}.png" for index in range(FAST)]
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join(fast + [f"{server.base}/hang/{index}.png" for index in range(HANGING)]) + "\n")
        out = tmp_path / "logos"
        # Deadlines far beyond the test's patience: only the stop itself may end the hanging fetches.
        process = subprocess.Popen(
            [sys.executable, "-m", "scraping.download", "--items", str(urls), "--out", str(out), "--no-progress",
             "--timeout", "300", "--deadline", "600", "--per-host", "2"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        try:
            waited = time.monotonic()
            while len(kept_files(out) if out.exists() else []) < FAST and time.monotonic() - waited < 60:
                time.sleep(0.05)
            assert server.hanging.acquire(timeout=60), "no fetch ever reached the hanging images"
            assert process.poll() is None
            stopped = time.monotonic()
            process.send_signal(stop)
            _, stderr = process.communicate(timeout=30)
            elapsed = time.monotonic() - stopped
        finally:
            process.kill()
            process.wait()

    assert process.returncode == 130
    assert stderr.strip() == "scraping.download: interrupted"
    assert elapsed < 5, f"the stop took {elapsed:.1f} s: the fetches in flight were waited for"
    with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["source_url"] for row in rows] == fast
    assert sorted(row["path"] for row in rows) == kept_files(out)
    assert [path.name for path in out.iterdir() if path.name.startswith(".")] == []  # no half-written file

    # The next run finds them all whole and fetches nothing (the server is gone: a fetch would fail).
    urls.write_text("\n".join(fast) + "\n")
    again = run_stage("-m", "scraping.download", "--items", str(urls), "--out", str(out), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"{out}: downloaded 0, skipped {FAST} (already there), duplicates 0, failed 0"
