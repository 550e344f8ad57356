"""CSV files (manifests, item lists): written safe to open in a spreadsheet, read whole or refused in one line.

Reading: Python's csv module raises on a field over its size limit and the decoder on bytes that are not
UTF-8; a NUL character, which no path or credit can hold, would surface later as a ValueError. Each
becomes a :class:`~infra.errors.UserError` naming the file and the line.

Writing: a spreadsheet runs a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
as a formula (``=HYPERLINK(...)``, ``@SUM(1+1)*cmd|' /C calc'!A0``), and titles, credits and URLs come
from web pages anyone can write. So every cell the project writes goes through :func:`csv_cell`, as
OWASP's CSV-injection guidance asks:

- a text cell that begins with one of those characters, after any number of single quotes, gets one more
  single quote in front (``=1+1`` -> ``'=1+1``, ``-5`` -> ``'-5``, ``'=x`` -> ``''=x``); a spreadsheet shows
  it as text, without the quote;
- numbers the project writes as numbers (``int``, ``float``: a manifest's ``bytes``, an item's ``width``)
  are written as they are, so a numeric column stays numeric (a number holds no formula);
- any other text is written as it is, a leading single quote included (``'quoted'`` stays ``'quoted'``).

:func:`parse_csv` undoes exactly that: a cell of one or more single quotes followed by one of those
characters loses its first quote, so the project's readers get back the title that really starts with
``-`` or ``=``. Only such cells change, so a CSV written by hand or by another tool reads as before
(a hand-written ``'=x``, which a spreadsheet also shows as ``=x``, reads as ``=x``). Every CSV write goes
through :func:`csv_text`, or :func:`csv_cell` for a writer that streams rows (the spiders' feed).
"""
from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from infra.errors import UserError

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_STARTS = "[" + re.escape("".join(FORMULA_STARTS)) + "]"
_NEEDS_QUOTE = re.compile("'*" + _STARTS)  # what csv_cell prefixes with a quote
_QUOTED = re.compile("'+" + _STARTS)  # what it wrote: parse_csv removes that one quote


def csv_cell(value: object) -> object:
    """``value`` as it goes into a CSV cell: numbers as they are, None as empty, text neutralised so that
    no spreadsheet runs it as a formula (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if _NEEDS_QUOTE.match(text) else text


def restore_cell(text: str) -> str:
    """The value :func:`csv_cell` was given for the cell ``text`` (text without formula quoting)."""
    return text[1:] if _QUOTED.match(text) else text


def csv_text(fields: Sequence[str], rows: Iterable[dict]) -> str:
    """A whole CSV file: a header of ``fields`` and one line per row, each cell through :func:`csv_cell`.

    Lines end in CRLF (RFC 4180, as Scrapy's feeds): the csv module quotes a cell holding a character of the
    line ending only, so with a bare LF a title holding a lone CR would split its row in two.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(field) for field in fields])
    for row in rows:
        unknown = set(row) - set(fields)
        if unknown:
            raise ValueError(f"row has fields outside the header: {sorted(unknown)}")
        writer.writerow([csv_cell(row.get(field)) for field in fields])
    return buffer.getvalue()


def read_text_file(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file; bytes that are not UTF-8 are a UserError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror})") from None
    return decode_text(data, path)


def decode_text(data: bytes, source: str | os.PathLike) -> str:
    """``data`` as UTF-8 text; ``source`` names where it came from in the error."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(f"{source}: line {line} is not UTF-8 text (byte 0x{data[error.start]:02x}); save the file "
                        "as UTF-8") from None


def parse_csv(text: str, source: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """The header and rows of CSV ``text`` (from ``source``, named in errors), each cell as it was before
    :func:`csv_cell` neutralised it."""
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise UserError(f"{source}: line {line} holds a NUL character; a CSV file holds text only")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise UserError(f"{source}: line {reader.line_num} is not valid CSV ({error})") from None
    for row in rows:
        for column, value in row.items():
            if isinstance(value, str):
                row[column] = restore_cell(value)
    return list(reader.fieldnames or []), rows


def read_csv(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """The header and rows of the UTF-8 CSV file ``path``."""
    return parse_csv(read_text_file(path), path)
