"""CSV files the project writes are safe to open in a spreadsheet, and the project's readers get the values back."""
from __future__ import annotations

import csv
import io

import pytest

from infra.csv_files import FORMULA_STARTS, csv_cell, csv_text, parse_csv
from preprocessing.collection import scan_collection
from scraping import download
from scraping.csv_feed import FormulaSafeCsvItemExporter
from scraping.items import ITEM_FIELDS, empty_item, read_items
from scraping.manifest import MANIFEST_FIELDS, manifest_text, parse_manifest
from tests.scraping.conftest import CONTACT, FAST, run_stage
from tests.scraping.wiki_server import WikiServer, png_bytes

# What the probe put in a manifest, one dangerous first character each, and texts that only look like them.
HOSTILE_TITLES = {
    "=": '=HYPERLINK("http://evil.example/","click")',
    "+": "+1+cmd|' /C calc'!A0",
    "-": "-2+3+cmd|' /C calc'!A0",
    "@": "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t": "\t=1+1",
    "\r": "\r=1+1",
}
LOOK_ALIKES = ["'=already quoted", "''-twice", "'just quoted'", "-5", "a=b", "plain", ""]


def manifest_row(index: int, title: str, **columns) -> dict:
    row = {field: "" for field in MANIFEST_FIELDS}
    row.update(path=f"img{index}.png", source_url=f"http://127.0.0.1/{index}.png", sha1=f"{index:040x}",
               content_sha1=f"{index:040x}", bytes=100 + index, licence="CC0", artist="", title=title)
    row.update(columns)
    return row


def raw_cells(text: str) -> list[list[str]]:
    """The cells as a spreadsheet gets them: plain CSV, no unquoting."""
    return list(csv.reader(io.StringIO(text, newline="")))


def test_every_dangerous_first_character_is_quoted_in_the_file():
    assert set(HOSTILE_TITLES) == set(FORMULA_STARTS)
    rows = [manifest_row(index, title) for index, title in enumerate(HOSTILE_TITLES.values())]
    text = manifest_text(rows)
    header, *lines = raw_cells(text)
    titles = [line[header.index("title")] for line in lines]
    assert titles == ["'" + title for title in HOSTILE_TITLES.values()]
    assert not any(cell.startswith(FORMULA_STARTS) for line in lines for cell in line)


def test_the_manifest_reader_gets_every_value_back(tmp_path):
    titles = [*HOSTILE_TITLES.values(), *LOOK_ALIKES]
    rows = [manifest_row(index, title, artist=title, licence="-" if index == 0 else "CC0")
            for index, title in enumerate(titles)]
    data = manifest_text(rows).encode()
    back = parse_manifest(data, "manifest.csv")
    assert [row["title"] for row in back] == titles
    assert [row["artist"] for row in back] == titles
    assert back[0]["licence"] == "-" and back[0]["bytes"] == "100"
    # and read again, it is written the same way: a resumed download never changes a row it kept
    assert manifest_text(back) == manifest_text(rows)

    # the dataset builder's reader (credits in a dataset's meta) gets the originals too
    for row in rows:
        (tmp_path / row["path"]).write_bytes(png_bytes(1))
    (tmp_path / "manifest.csv").write_bytes(data)
    credits = scan_collection(tmp_path).credits
    assert [credits[row["path"]].get("title", "") for row in rows] == titles


def test_numbers_stay_numbers_and_text_that_looks_like_one_is_quoted():
    text = csv_text(["name", "count", "ratio"], [{"name": "-5", "count": -5, "ratio": -0.5},
                                                 {"name": "x", "count": 3, "ratio": None}])
    assert text == "name,count,ratio\r\n'-5,-5,-0.5\r\nx,3,\r\n"
    columns, rows = parse_csv(text, "numbers.csv")
    assert columns == ["name", "count", "ratio"]
    assert rows == [{"name": "-5", "count": "-5", "ratio": "-0.5"}, {"name": "x", "count": "3", "ratio": ""}]


def test_a_hand_written_csv_reads_as_before():
    text = "url,title\nhttp://a/1.png,'quoted'\nhttp://a/2.png,-5\nhttp://a/3.png,'\nhttp://a/4.png,'=typed by hand\n"
    _, rows = parse_csv(text, "items.csv")
    # only a quote in front of a formula character is taken as ours; a spreadsheet shows that cell the same way
    assert [row["title"] for row in rows] == ["'quoted'", "-5", "'", "=typed by hand"]


def test_cells_are_text_numbers_or_empty():
    assert csv_cell(None) == "" and csv_cell(7) == 7 and csv_cell(True) == "True"
    assert csv_cell("=1") == "'=1" and csv_cell("'=1") == "''=1" and csv_cell("'a") == "'a"
    with pytest.raises(ValueError, match="outside the header"):
        csv_text(["a"], [{"a": 1, "b": 2}])


def test_the_spiders_feed_exporter_quotes_cells(tmp_path):
    path = tmp_path / "items.csv"
    with open(path, "wb") as handle:
        exporter = FormulaSafeCsvItemExporter(handle, fields_to_export=list(ITEM_FIELDS))
        exporter.start_exporting()
        exporter.export_item(empty_item(title=HOSTILE_TITLES["@"], url="http://127.0.0.1/a.png", width=-3,
                                        artist=HOSTILE_TITLES["="]))
        exporter.finish_exporting()
    header, line = raw_cells(path.read_bytes().decode())
    cells = dict(zip(header, line))
    assert cells["title"] == "'" + HOSTILE_TITLES["@"] and cells["artist"] == "'" + HOSTILE_TITLES["="]
    assert cells["width"] == "-3"
    item = read_items(path)[0]
    assert item["title"] == HOSTILE_TITLES["@"] and item["artist"] == HOSTILE_TITLES["="]


def test_a_crawl_and_its_download_write_quoted_cells_and_read_back_the_titles(tmp_path, capsys):
    """items.csv from the gallery spider, then manifest.csv from the downloader, as a user runs them."""
    title = HOSTILE_TITLES["="]
    server = WikiServer()
    server.add_file("evil.png", png_bytes(1), "image/png")
    server.pages["/gallery/index.html"] = (f'<html><body><img src="/images/evil.png" alt=\'{title}\' width="64" '
                                           'height="64"></body></html>')
    items = tmp_path / "items.csv"
    with server:
        crawled = run_stage("-m", "scraping.gallery", "--start-url", f"{server.base}/gallery/index.html",
                            "--depth", "0", "--contact", CONTACT, "-o", str(items), *FAST)
        assert crawled.returncode == 0, crawled.stderr
        header, line = raw_cells(items.read_bytes().decode())
        assert dict(zip(header, line))["title"] == "'" + title
        assert [item["title"] for item in read_items(items)] == [title]

        out = tmp_path / "logos"
        assert download.main(["--items", str(items), "--out", str(out), "--no-progress"]) == 0
        assert "downloaded 1," in capsys.readouterr().out
    manifest = (out / "manifest.csv").read_bytes()
    header, line = raw_cells(manifest.decode())
    assert dict(zip(header, line))["title"] == "'" + title
    assert [row["title"] for row in parse_manifest(manifest, "manifest.csv")] == [title]
