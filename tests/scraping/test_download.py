"""The downloader against the local server: checks, dedupe, retries, resume, manifest, politeness."""
from __future__ import annotations

import base64
import csv
import hashlib
import json
import socket
import threading
import time

import pytest

from infra.errors import UserError
from scraping import download
from scraping.commons import file_item
from scraping.identity import user_agent
from scraping.items import ITEM_FIELDS
from tests.scraping.conftest import CONTACT, run_stage
from tests.scraping.wiki_server import SVG, png_bytes

LISTED = ["a.png", "b.jpg", "c.svg", "d-corrupt.png", "e-big.png", "f-same-as-a.png", "g.pdf", "h.png",
          "i-flaky.png", "j.png"]
KEPT = {"a.png": "png", "b.jpg": "jpg", "c.svg": "svg", "h.png": "png", "i-flaky.png": "png", "j.png": "png"}


def write_items(wiki, path, names):
    """The items file the Commons spider writes for these files (same rows, without crawling)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ITEM_FIELDS)
        writer.writeheader()
        writer.writerows(file_item(wiki.page(name, 120)) for name in names)
    return path


def run_download(items, out, *extra):
    return download.main(["--items", str(items), "--out", str(out), "--no-progress", "--contact", CONTACT,
                          "--max-bytes", "5000", *extra])


def manifest(out):
    with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
        return {row["title"].removeprefix("File:"): row for row in csv.DictReader(handle)}


def test_keeps_good_images_once_and_counts_the_rest(wiki, tmp_path, capsys):
    items = write_items(wiki, tmp_path / "items.csv", LISTED)
    out = tmp_path / "logos"
    assert run_download(items, out) == 0
    summary = capsys.readouterr().out
    assert summary.strip() == (
        f"{out}: downloaded 6, skipped 0 (already there), duplicates 1, failed 3 "
        "(not an image (application/pdf): 1, too large: 1, undecodable: 1)")

    rows = manifest(out)
    assert set(rows) == set(KEPT)
    for name, extension in KEPT.items():
        row = rows[name]
        assert row["path"].startswith(name.rsplit(".", 1)[0] + "-") and row["path"].endswith("." + extension)
        body = (out / row["path"]).read_bytes()
        assert body == wiki.files[name].body
        assert row["content_sha1"] == hashlib.sha1(body).hexdigest() and row["sha1"] == wiki.files[name].sha1
        assert row["source_url"] == wiki.thumb_url(name, 120)
        assert row["licence"] == "CC BY-SA 4.0" and row["artist"].startswith("Artist ")
    assert sorted(path.name for path in out.iterdir()) == sorted([*(row["path"] for row in rows.values()), "manifest.csv"])

    thumbs = wiki.requests_to("/thumb/")
    fetched = [entry["path"].split("px-", 1)[1] for entry in thumbs]
    assert "g.pdf" not in fetched and "f-same-as-a.png" not in fetched  # rejected by the API's mime and sha1
    assert fetched.count("h.png") == 2 and fetched.count("i-flaky.png") == 2  # 429 and 500, then success
    h_times = [entry["time"] for entry in thumbs if entry["path"].endswith("h.png")]
    assert h_times[1] - h_times[0] >= 0.95  # Retry-After: 1 honoured
    assert wiki.max_in_flight["thumb"] <= 2
    assert {entry["user_agent"] for entry in thumbs} == {user_agent(CONTACT)}


def test_second_run_downloads_nothing_and_a_damaged_file_is_fetched_again(wiki, tmp_path, capsys):
    items = write_items(wiki, tmp_path / "items.csv", LISTED)
    out = tmp_path / "logos"
    run_download(items, out)
    before = (out / "manifest.csv").read_text()
    capsys.readouterr()
    wiki.log.clear()

    run_download(items, out)
    assert "downloaded 0, skipped 6 (already there), duplicates 1" in capsys.readouterr().out
    fetched = {entry["path"].split("px-", 1)[1] for entry in wiki.requests_to("/thumb/")}
    assert fetched == {"d-corrupt.png", "e-big.png"}  # only the failures are tried again
    assert (out / "manifest.csv").read_text() == before

    damaged = out / manifest(out)["j.png"]["path"]
    damaged.write_bytes(damaged.read_bytes()[:10])
    wiki.log.clear()
    run_download(items, out)
    assert "downloaded 1, skipped 5 (already there)" in capsys.readouterr().out
    assert damaged.read_bytes() == wiki.files["j.png"].body
    assert "j.png" in {entry["path"].split("px-", 1)[1] for entry in wiki.requests_to("/thumb/")}


def test_original_files_and_url_lists_with_content_dedupe(wiki, tmp_path, capsys):
    wiki.add_file("copy-of-h.png", wiki.files["h.png"].body, "image/png")
    wiki.pages["/page.html"] = "<html>not an image</html>"
    urls = tmp_path / "urls.txt"
    urls.write_text("\n".join([wiki.original_url("h.png"), wiki.original_url("copy-of-h.png"),
                               f"{wiki.base}/page.html", f"{wiki.base}/missing.png",
                               "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()]))
    out = tmp_path / "logos"
    assert run_download(urls, out, "--original", "--retries", "0") == 0
    assert capsys.readouterr().out.strip() == (
        f"{out}: downloaded 2, skipped 0 (already there), duplicates 1, failed 2 "
        "(HTTP 404: 1, not an image (text/html): 1)")
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [row["source_url"] for row in rows] == [wiki.original_url("h.png"), urls.read_text().splitlines()[-1]]
    assert rows[0]["path"].startswith("h-") and rows[1]["path"].endswith(".svg")


def test_jsonl_items_and_bad_input_get_one_line(wiki, tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(file_item(wiki.page("a.png", 120))) + "\n{broken\n")
    result = run_stage("-m", "scraping.download", "--items", str(items), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"scraping.download: error: {items} line 2 is not valid JSON (Expecting property name enclosed in double quotes)"
    with pytest.raises(UserError, match=f"items file {tmp_path / 'nope.csv'} does not exist"):
        download.main(["--items", str(tmp_path / "nope.csv"), "--out", str(tmp_path)])
    commons = tmp_path / "commons.txt"
    commons.write_text("https://upload.wikimedia.org/wikipedia/commons/a/a9/Example.jpg\n")
    with pytest.raises(UserError, match="upload.wikimedia.org requires a contact"):
        download.main(["--items", str(commons), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("body, content_type, reason", [
    (png_bytes(9), "image/png", None),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><rect", "image/svg+xml", "undecodable"),
    (png_bytes(9)[:-20], "image/png", "undecodable"),
])
def test_image_checks(body, content_type, reason):
    if reason is None:
        assert download.image_extension(content_type, body) == "png"
    else:
        with pytest.raises(download.Rejected, match=reason):
            download.image_extension(content_type, body)


class TricklingServer:
    """A loopback server that answers every request one byte at a time, ``interval`` seconds apart, in the
    headers or (with ``headers_whole``) only in the body, until the client hangs up."""

    def __init__(self, interval: float, headers_whole: bool):
        self.interval, self.headers_whole = interval, headers_whole
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.accept, daemon=True)]

    def __enter__(self):
        self.threads[0].start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=5)

    def accept(self):
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self.trickle, args=(client,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def trickle(self, client):
        headers = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
        with client:
            client.recv(65536)
            try:
                if self.headers_whole:
                    client.sendall(headers)
                for byte in (png_bytes(1) if self.headers_whole else headers) * 1000:
                    if self.stop.wait(self.interval):
                        return
                    client.sendall(bytes([byte]))
            except OSError:
                return  # the client hung up: what the deadline is for


@pytest.mark.parametrize("headers_whole", [True, False], ids=["trickled-body", "trickled-headers"])
def test_a_trickling_server_is_cut_off_at_the_deadline(tmp_path, capsys, headers_whole):
    with TricklingServer(interval=0.2, headers_whole=headers_whole) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{server.base}/slow.png\n")
        out = tmp_path / "logos"
        started = time.monotonic()
        assert download.main(["--items", str(urls), "--out", str(out), "--no-progress", "--timeout", "5",
                              "--deadline", "1.5", "--retries", "2"]) == 0
        elapsed = time.monotonic() - started
    assert capsys.readouterr().out.strip() == (
        f"{out}: downloaded 0, skipped 0 (already there), duplicates 0, failed 1 (over the deadline: 1)")
    assert 1.5 <= elapsed < 6
    assert [path.name for path in out.iterdir()] == []


def test_a_bad_deadline_is_one_line(tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/a.png\n")
    with pytest.raises(UserError, match=r"^--deadline 0.0 must be more than 0 and at most 86400 seconds$"):
        download.main(["--items", str(urls), "--out", str(tmp_path / "o"), "--deadline", "0"])
