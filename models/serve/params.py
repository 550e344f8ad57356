"""Query parameters checked once, with errors that name the parameter, the value and what is allowed."""
from __future__ import annotations

import re
import secrets
from typing import Mapping

from infra.errors import quoted
from models.config.limits import MAX_SEED
from models.serve.errors import ApiError

MAX_SAMPLES = 256
FORMATS = ("png", "zip", "svg")
MAX_SIZE = 1024  # pixels on the longer side of a sample rendered at another size
# Pixels one request may render: 16 samples at 1024 px, 256 at 256 px. 256 at 1024 px took 48 s and 4 GB of the
# server's memory (2 CPU cores), enough for a few requests to starve every other one.
MAX_RENDERED_PIXELS = 16 * 1024 * 1024
CHECKPOINTS = ("last", "best")
# Run and job names become folder names: no separators, no leading dot (hidden folders are the server's).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# ASCII digits only: int() and float() also read '１', '٣', '1_000' and ' 5 ', which no client means to send.
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}")
DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{0,12})?|\.[0-9]{1,12}")


def integer(args: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    text = args.get(key)
    if text is None or text == "":
        return default
    if not WHOLE_NUMBER.fullmatch(text):
        raise ApiError(400, f"{key}={quoted(text)} is not an integer; use a whole number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise ApiError(400, f"{key}={value} is out of range; use a whole number from {low} to {high}")
    return value


def sample_count(args: Mapping[str, str], default: int) -> int:
    return integer(args, "n", default, 1, MAX_SAMPLES)


def seed(args: Mapping[str, str]) -> int:
    """The requested seed, or a fresh random one (reported back so the images can be made again)."""
    return integer(args, "seed", secrets.randbelow(MAX_SEED + 1), 0, MAX_SEED)


def truncation(args: Mapping[str, str]) -> float:
    text = args.get("truncation")
    if text is None or text == "":
        return 1.0
    value = float(text) if DECIMAL.fullmatch(text) else float("nan")
    if not 0.0 <= value <= 1.0:
        raise ApiError(400, f"truncation={text[:32]!r} is not allowed; use a number from 0 (the average sample) "
                            "to 1 (no truncation)")
    return value


def size(args: Mapping[str, str]) -> int | None:
    """Pixels on the longer side for a vector generator's samples; None: the trained size."""
    if args.get("size") in (None, ""):
        return None
    return integer(args, "size", 0, 1, MAX_SIZE)


def check_rendered_pixels(count: int, side: int | None, kind: str) -> None:
    """Refuse a request whose pictures hold more than MAX_RENDERED_PIXELS; an SVG's size is only its width and
    height attributes, nothing rendered."""
    if side is None or kind == "svg" or count * side * side <= MAX_RENDERED_PIXELS:
        return
    most = MAX_RENDERED_PIXELS // (side * side)
    raise ApiError(400, f"{count} samples at size={side} are {count * side * side:,} pixels; at most "
                        f"{MAX_RENDERED_PIXELS:,} are rendered per request: ask for at most {most} at this size, "
                        "a smaller size, or format=svg")


def seeds(args: Mapping[str, str]) -> list[int] | None:
    """seeds=0-35 or 1,5,9: one image per seed (instead of n and seed)."""
    from infra.errors import UserError
    from models.seeds import parse_seeds

    text = args.get("seeds")
    if text is None or text == "":
        return None
    if "n" in args or "seed" in args:
        raise ApiError(400, "seeds gives one image per seed; drop n and seed, or drop seeds")
    try:
        return parse_seeds(text[:200], MAX_SAMPLES, "seeds")
    except UserError as error:
        raise ApiError(400, str(error)) from None


def choice(args: Mapping[str, str], key: str, allowed: tuple[str, ...]) -> str:
    value = args.get(key) or allowed[0]
    if value not in allowed:
        raise ApiError(400, f"{key}={quoted(value)} is not supported; use one of: {', '.join(allowed)}", list(allowed))
    return value


def name(value: str, what: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ApiError(
            400,
            f"{what} {quoted(value)} is not allowed; use 1 to 64 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit",
        )
    return value
