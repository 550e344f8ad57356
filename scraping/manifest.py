"""manifest.csv: one row per file a stage kept, saying where it came from and whom to credit."""
from __future__ import annotations

import csv
import io

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("path", "source_url", "sha1", "content_sha1", "bytes", "licence", "artist", "title", "page_url")


def manifest_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def parse_manifest(text: str | None) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text))) if text else []
