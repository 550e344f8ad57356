"""Throughput of stage 1 against the local MediaWiki stand-in (loopback only): list N files, download them.

    .venv/bin/python bench/scraping_local.py --files 2000
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infra import cli  # noqa: E402
from scraping import download  # noqa: E402
from tests.scraping.wiki_server import WikiServer, png_bytes  # noqa: E402


DESCRIPTION = """\
Throughput of stage 1 against the local MediaWiki stand-in (loopback only): list N files, download them.

Prints the listing time (API pages of 50, AutoThrottle as shipped unless --fast) and the download rate at
the default 2 requests per host. Loopback has no network latency, so these are the tool's own overheads.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/scraping_local.py", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="files in the category (default: 2000)")
    parser.add_argument("--fast", action="store_true", help="AutoThrottle start delay 0.1 s instead of 1 s")
    args = parser.parse_args(argv)
    server = WikiServer()
    names = [f"Logo {index:05d}.png" for index in range(args.files)]
    for index, name in enumerate(names):
        server.add_file(name, png_bytes(index, side=16), "image/png")
    server.add_category("Category:Bench", files=names)
    with server, tempfile.TemporaryDirectory() as folder:
        items = Path(folder) / "items.csv"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scraping.commons", "--category", "Bench", "--api-url", server.api_url,
                        "-o", str(items), "-q", *(["-s", "AUTOTHROTTLE_START_DELAY=0.1"] if args.fast else [])],
                       cwd=REPO, check=True)
        listed = time.perf_counter() - started
        pages = len(server.requests_to("/w/api.php"))
        started = time.perf_counter()
        download.main(["--items", str(items), "--out", str(Path(folder) / "out"), "--no-progress"])
        fetched = time.perf_counter() - started
        started = time.perf_counter()
        download.main(["--items", str(items), "--out", str(Path(folder) / "out"), "--no-progress"])
        resumed = time.perf_counter() - started
    print(f"listing: {args.files} files, {pages} API requests, {listed:.2f} s (incl. ~1.5 s start-up)")
    print(f"download: {args.files / fetched:.0f} files/s ({fetched:.2f} s)")
    print(f"resume check of {args.files} kept files: {resumed:.2f} s")
    return 0


if __name__ == "__main__":
    cli.run(main)
