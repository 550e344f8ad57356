"""The items format every spider writes and the downloader reads: one row per image, with provenance.

A row names the image (``title``), where it was found (``page_url``), the file itself (``url``) and an
optional smaller rendition (``thumb_url``), what the source said about it (size, mime, sha1) and whom to
credit (``licence``, ``artist``). Fields a source does not know are empty. Files are CSV or JSON Lines,
chosen by extension; a plain list of URLs (one a line) is read as rows with only ``url`` set.
"""
from __future__ import annotations

from pathlib import Path

from infra.bounded_json import loads_bounded
from infra.csv_files import parse_csv, read_text_file
from infra.errors import UserError

ITEM_FIELDS = ("title", "page_url", "url", "thumb_url", "width", "height", "mime", "sha1", "licence", "artist")
NUMBER_FIELDS = ("width", "height")  # JSON feeds write these as numbers; every other field is text

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
            row = loads_bounded(line, f"{path} line {number}")
            if not isinstance(row, dict) or "url" not in row:
                raise UserError(f"{path} line {number} is not an object with a 'url' field")
            rows.append(_as_text(row, f"{path} line {number}"))
    else:
        rows = [{"url": line.strip()} for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [empty_item(**{key: value for key, value in row.items() if key in ITEM_FIELDS}) for row in rows]


def _as_text(row: dict, source: str) -> dict:
    """A JSON row's item fields as text, the way a CSV row has them; a value of another kind is a UserError."""
    text = {}
    for key, value in row.items():
        if key not in ITEM_FIELDS:
            continue
        if value is None:
            value = ""
        elif key in NUMBER_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            kinds = "a string or a number" if key in NUMBER_FIELDS else "a string"
            raise UserError(f"{source}: '{key}' is JSON {type(value).__name__}; expected {kinds}")
        text[key] = value
    return text
