"""Hostile items files end scraping.download in one line, before any request or file is made.

The builder is shared with the contract walk (tests/infra/test_cli_contract.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import cli
from scraping import download
from scraping.items import read_items

URL = "https://example.org/a.png"


def hostile_items(folder: Path) -> dict[str, tuple[Path, str]]:
    """Per kind of hostile JSON Lines items file: (its path, a piece of the one line that refuses it)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = {
        "deep-nesting": ('{"url": "%s", "title": %s}' % (URL, "[" * 50_000 + "]" * 50_000),
                         "line 2 is nested too deeply"),
        "huge-int": ('{"url": "%s", "width": %s}' % (URL, "9" * 5000), "line 2 holds a number with 5000 digits"),
        "number-title": (json.dumps({"url": URL, "title": 12}), "line 2: 'title' is JSON int; expected a string"),
        "object-url": (json.dumps({"url": {"href": URL}}), "line 2: 'url' is JSON dict; expected a string"),
        "list-url": (json.dumps({"url": [URL]}), "line 2: 'url' is JSON list; expected a string"),
    }
    found = {}
    for kind, (line, message) in lines.items():
        path = folder / f"{kind}.jsonl"
        path.write_text(json.dumps({"url": URL, "title": "fine", "width": 120}) + "\n" + line + "\n")
        found[kind] = (path, message)
    return found


@pytest.mark.parametrize("kind", ["deep-nesting", "huge-int", "number-title", "object-url", "list-url"])
def test_download_refuses_a_hostile_items_file_in_one_line(kind, tmp_path, capsys):
    path, message = hostile_items(tmp_path / "items")[kind]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        cli.run(download.main, ["--items", str(path), "--out", str(out), "--no-progress"])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"{path} {message}" in lines[0], lines
    assert not out.exists()


def test_numbers_where_feeds_write_them_are_read_as_text(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"url": URL, "title": "File:A.png", "width": 120, "height": 80.5, "mime": None}))
    [item] = read_items(path)
    assert (item["url"], item["title"], item["width"], item["height"], item["mime"]) == (
        URL, "File:A.png", "120", "80.5", "")
