"""Seed lists as StyleGAN2-ADA's --seeds writes them: '0-35', '1,5,9' or '0-3,10'. Shared by models.generate and
the server, so both read a list the same way."""
from __future__ import annotations

import re

from infra.errors import UserError
from models.config.limits import MAX_SEED

# ASCII digits: \d would also take '１' and '٣'.
_PIECE = re.compile(r" *([0-9]{1,10}) *(?:- *([0-9]{1,10}) *)?")


def parse_seeds(text: str, limit: int, what: str = "--seeds") -> list[int]:
    """The seeds in the order given; a bad piece, a range high-low or more than ``limit`` seeds is a one-line
    UserError naming ``what``."""
    seeds: list[int] = []
    for piece in text.split(","):
        match = _PIECE.fullmatch(piece)
        low = int(match.group(1)) if match else 0
        high = int(match.group(2)) if match and match.group(2) is not None else low
        if not match or high < low or high > MAX_SEED:
            raise UserError(f"{what} {text!r}: expected seeds and ranges like 0-35 or 1,5,9 (whole numbers "
                            f"0-{MAX_SEED}, each range low-high)")
        if len(seeds) + high - low + 1 > limit:
            raise UserError(f"{what} {text!r}: more than {limit} seeds; ask for fewer")
        seeds.extend(range(low, high + 1))
    return seeds
