"""The gallery spider on a small local site: what it collects, where it goes and where it does not."""
from __future__ import annotations

import base64
import csv

from scraping import download
from scraping.gallery import extension_of, inline_svg_url, inline_svgs, pixels
from tests.scraping.conftest import CONTACT, FAST, run_stage
from tests.scraping.wiki_server import SVG, WikiServer, png_bytes

INLINE = '<svg viewBox="0 0 8 8" width="48" height="48"><circle cx="4" cy="4" r="3"/></svg>'


def site():
    server = WikiServer()
    for index, name in enumerate(["a.png", "tiny.png", "j.png", "k.png", "x.tif"]):
        server.add_file(name, png_bytes(index), "image/png")
    server.add_file("c.svg", SVG, "image/svg+xml")
    other_host = server.base.replace("127.0.0.1", "localhost")
    server.pages["/gallery/index.html"] = f"""<html><body>
        <img src="/images/a.png" alt="Logo A" width="64" height="64">
        <img src="/images/tiny.png" width="8" height="8">
        <img src="/images/x.tif">
        {INLINE}
        <a href="/images/c.svg">vector</a>
        <a href="page2.html">more</a> <a href="/private/secret.html">secret</a>
        <a href="{other_host}/gallery/elsewhere.html">elsewhere</a>
        </body></html>"""
    server.pages["/gallery/page2.html"] = '<img src="/images/j.png"><a href="page3.html">deeper</a>'
    server.pages["/gallery/page3.html"] = '<img src="/images/k.png">'
    server.pages["/private/secret.html"] = '<img src="/images/k.png">'
    return server


def test_collects_images_within_depth_host_and_robots(tmp_path, capsys):
    items = tmp_path / "items.csv"
    with site() as server:
        result = run_stage("-m", "scraping.gallery", "--start-url", f"{server.base}/gallery/index.html",
                           "--depth", "1", "--min-size", "16", "--contact", CONTACT, "-o", str(items), *FAST)
        assert result.returncode == 0, result.stderr
        rows = list(csv.DictReader(items.open()))
        assert [(row["title"], row["url"]) for row in rows] == [
            ("Logo A", server.original_url("a.png")),
            ("c.svg", server.original_url("c.svg")),
            ("inline SVG 1", inline_svg_url(INLINE)),
            ("j.png", server.original_url("j.png")),
        ]
        assert rows[0]["page_url"] == f"{server.base}/gallery/index.html" and rows[0]["width"] == "64"
        assert rows[2]["mime"] == "image/svg+xml"
        assert [entry["path"] for entry in server.log] == ["/robots.txt", "/gallery/index.html", "/gallery/page2.html"]

        out = tmp_path / "logos"
        download.main(["--items", str(items), "--out", str(out), "--no-progress"])
        assert "downloaded 4, skipped 0 (already there), duplicates 0, failed 0" in capsys.readouterr().out
        assert len(list(out.glob("*.svg"))) == 2


def test_helpers():
    assert pixels("64") == 64 and pixels("64px") == 64 and pixels("50%") is None and pixels(None) is None
    assert extension_of("http://h/a/B.PNG?x=1") == "png"
    url = inline_svg_url("<svg><g/></svg>")
    assert extension_of(url) == "svg"
    assert base64.b64decode(url.split(",", 1)[1]).decode() == '<svg xmlns="http://www.w3.org/2000/svg"><g/></svg>'
    page = '<p><svg viewBox="0 0 1 1"><svg><g/></svg></svg><SVG/><svg width="2"></svg></p>'
    assert inline_svgs(page) == ['<svg viewBox="0 0 1 1"><svg><g/></svg></svg>', "<SVG/>", '<svg width="2"></svg>']


def test_bad_start_url_gets_one_line():
    result = run_stage("-m", "scraping.gallery", "--start-url", "ftp://example.org/")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "scraping.gallery: error: start URL 'ftp://example.org/' must be an http:// or https:// URL")
