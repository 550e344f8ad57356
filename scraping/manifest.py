"""manifest.csv: one row per file a stage kept, saying where it came from and whom to credit."""
from __future__ import annotations

import csv
import io

from infra.csv_files import decode_text, parse_csv
from infra.errors import UserError

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("path", "source_url", "sha1", "content_sha1", "bytes", "licence", "artist", "title", "page_url")


def manifest_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


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
