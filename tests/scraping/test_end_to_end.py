"""The issue's "done when": 500 files listed across 10 continuation pages, downloaded with dedupe and resume."""
from __future__ import annotations

import csv

from scraping import download
from tests.scraping.conftest import CONTACT, FAST, run_stage
from tests.scraping.wiki_server import WikiServer, png_bytes

FILES = 500
DUPLICATES = 20  # files whose bytes (and so API SHA-1) repeat an earlier file's


def test_500_files_over_10_pages_then_resume(tmp_path, capsys):
    server = WikiServer()
    names = [f"Logo {index:03d}.png" for index in range(FILES)]
    for index, name in enumerate(names):
        server.add_file(name, png_bytes(index % (FILES - DUPLICATES)), "image/png")
    server.add_category("Category:Big", files=names)
    items = tmp_path / "items.csv"
    out = tmp_path / "logos"
    with server:
        listed = run_stage("-m", "scraping.commons", "--category", "Big", "--api-url", server.api_url,
                           "--contact", CONTACT, "-o", str(items), "-q", *FAST)
        assert listed.returncode == 0, listed.stderr
        with open(items, newline="") as handle:
            assert len(list(csv.DictReader(handle))) == FILES
        assert len(server.requests_to("/w/api.php")) == 10

        assert download.main(["--items", str(items), "--out", str(out), "--no-progress", "--contact", CONTACT]) == 0
        assert capsys.readouterr().out.strip() == (
            f"{out}: downloaded {FILES - DUPLICATES}, skipped 0 (already there), duplicates {DUPLICATES}, failed 0")
        assert len(list(out.glob("*.png"))) == FILES - DUPLICATES
        assert len(server.requests_to("/thumb/")) == FILES - DUPLICATES

        lost = sorted(out.glob("*.png"))[:7]
        for path in lost:
            path.unlink()
        server.log.clear()
        download.main(["--items", str(items), "--out", str(out), "--no-progress", "--contact", CONTACT])
        assert capsys.readouterr().out.strip() == (
            f"{out}: downloaded 7, skipped {FILES - DUPLICATES - 7} (already there), duplicates {DUPLICATES}, failed 0")
        assert len(server.requests_to("/thumb/")) == 7
        assert all(path.exists() for path in lost)
