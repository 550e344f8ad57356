"""CSV files people hand to a command (manifests, item lists): read whole, or refused in one line.

Python's csv module raises on a field over its size limit and the decoder on bytes that are not UTF-8;
a NUL character, which no path or credit can hold, would surface later as a ValueError. Each becomes a
:class:`~infra.errors.UserError` naming the file and the line.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from infra.errors import UserError


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
    """The header and rows of CSV ``text`` (from ``source``, named in errors)."""
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise UserError(f"{source}: line {line} holds a NUL character; a CSV file holds text only")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise UserError(f"{source}: line {reader.line_num} is not valid CSV ({error})") from None
    return list(reader.fieldnames or []), rows


def read_csv(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """The header and rows of the UTF-8 CSV file ``path``."""
    return parse_csv(read_text_file(path), path)
