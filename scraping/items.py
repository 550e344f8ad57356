"""The items format every spider writes and the downloader reads: one row per image, with provenance.

A row names the image (``title``), where it was found (``page_url``), the file itself (``url``) and an
optional smaller rendition (``thumb_url``), what the source said about it (size, mime, sha1) and whom to
credit (``licence``, ``artist``). Fields a source does not know are empty. Files are CSV or JSON Lines,
chosen by extension; a plain list of URLs (one a line) is read as rows with only ``url`` set.
"""
from __future__ import annotations

import json
from pathlib import Path

from infra.csv_files import parse_csv, read_text_file
from infra.errors import UserError

ITEM_FIELDS = ("title", "page_url", "url", "thumb_url", "width", "height", "mime", "sha1", "licence", "artist")

FEED_FORMATS = {".csv": "csv", ".jsonl": "jsonlines", ".jl": "jsonlines"}


def feed_format(path: str | Path) -> str:
    """The Scrapy feed exporter name for an items file, by its extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FEED_FORMATS:
        raise UserError(f"items file {path} must end in one of {', '.join(FEED_FORMATS)}")
    return FEED_FORMATS[suffix]


def empty_item(**known: object) -> dict:
    """A row with every field present, in order, and the given ones filled in."""
    unknown = set(known) - set(ITEM_FIELDS)
    if unknown:
        raise ValueError(f"not item fields: {sorted(unknown)}")
    return {field: known.get(field, "") for field in ITEM_FIELDS}


def read_items(path: str | Path) -> list[dict]:
    """Rows of an items CSV/JSONL file, or of a plain URL list (``.txt`` or any other extension)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"items file {path} does not exist")
    suffix = path.suffix.lower()
    text = read_text_file(path)
    if suffix == ".csv":
        columns, rows = parse_csv(text, path)
        if rows and "url" not in columns:
            raise UserError(f"{path} has no 'url' column; its columns are {', '.join(columns)}")
    elif suffix in (".jsonl", ".jl"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{path} line {number} is not JSON ({error.msg})") from None
            if not isinstance(row, dict) or "url" not in row:
                raise UserError(f"{path} line {number} is not an object with a 'url' field")
            rows.append(row)
    else:
        rows = [{"url": line.strip()} for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [empty_item(**{key: value for key, value in row.items() if key in ITEM_FIELDS}) for row in rows]
