"""manifest.csv: one row per file a stage kept, saying where it came from and whom to credit.

Titles, credits and URLs come from web pages, so the file is written with :func:`infra.csv_files.csv_text`:
a cell that a spreadsheet would run as a formula is written with a leading single quote, and
:func:`parse_manifest` (like every reader built on :func:`infra.csv_files.parse_csv`) gets the original
back. ``bytes`` is written as a number.
"""
from __future__ import annotations

from infra.csv_files import csv_text, decode_text, parse_csv
from infra.errors import UserError

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("path", "source_url", "sha1", "content_sha1", "bytes", "licence", "artist", "title", "page_url")


def manifest_text(rows: list[dict]) -> str:
    return csv_text(MANIFEST_FIELDS, rows)


def parse_manifest(data: bytes | None, source: str) -> list[dict]:
    """The rows of a manifest this stage wrote (none when there is none yet); one it cannot read is a
    UserError rather than a file to overwrite."""
    if not data:
        return []
    columns, rows = parse_csv(decode_text(data, source), source)
    missing = [column for column in MANIFEST_FIELDS if column not in columns]
    if missing:
        raise UserError(f"{source}: lacks column(s) {', '.join(missing)}; it is not a manifest written by this "
                        "stage: move it away to start afresh")
    for number, row in enumerate(rows, 1):
        if any(row[column] is None for column in MANIFEST_FIELDS):
            raise UserError(f"{source}: row {number} ({row['path']!r}) has fewer fields than the header; fix or "
                            "remove that row")
    return rows
