"""Parse JSON from a file a user handed us, with limits on what it may cost.

``json.loads`` alone turns hostile text into tracebacks: nesting deeper than the interpreter's recursion
limit raises RecursionError, and an integer longer than Python's digit limit raises a bare ValueError.
Here both, and anything nested deeper or written with more digits than the data can mean, become one
:class:`~infra.errors.UserError` naming the source.
"""
from __future__ import annotations

import json

from infra.errors import UserError

MAX_DEPTH = 32  # datasets' meta and scraped items nest two or three levels; far more is an attack
MAX_INT_DIGITS = 40  # wider than any count, size or id the project stores


class _TooManyDigits(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _TooManyDigits(text)
    return int(text)


def depth(value: object) -> int:
    """How deeply lists and objects nest in a parsed JSON value (counted without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def loads_bounded(text: str, source: str, max_depth: int = MAX_DEPTH) -> object:
    """The value of the JSON ``text``; ``source`` names it in the one-line UserError for anything refused."""
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except _TooManyDigits as error:
        raise UserError(f"{source} holds a number with {len(str(error).lstrip('-'))} digits; "
                        f"at most {MAX_INT_DIGITS} are accepted") from None
    except RecursionError:
        raise UserError(f"{source} is nested too deeply; at most {max_depth} levels are accepted") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{source} is not JSON ({error.msg})") from None
    except ValueError as error:  # what else the decoder refuses, e.g. a lone surrogate
        raise UserError(f"{source} is not JSON ({' '.join(str(error).split())[:120]})") from None
    if depth(value) > max_depth:
        raise UserError(f"{source} is nested too deeply; at most {max_depth} levels are accepted")
    return value
