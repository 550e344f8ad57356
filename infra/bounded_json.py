"""Parse JSON from a file a user handed us, with limits on what it may cost.

``json.loads`` alone turns hostile text into tracebacks: nesting deeper than the interpreter's recursion
limit raises RecursionError, and an integer longer than Python's digit limit raises a bare ValueError.
Here both, and anything nested deeper or written with more digits than the data can mean, become one
:class:`~infra.errors.UserError` naming the source.

With ``strict``, for settings (configs, ``--set`` values, request bodies), it also refuses what the JSON standard
does not allow but Python's decoder takes: NaN and Infinity, which pass every range check (NaN compares false
with any bound) and end a run in a divergence, numbers beyond float's range (read as infinity), and a key given
twice in one object, of which the decoder would silently keep the last.
"""
from __future__ import annotations

import json
import math

from infra.errors import UserError

MAX_DEPTH = 32  # datasets' meta and scraped items nest two or three levels; far more is an attack
MAX_INT_DIGITS = 40  # wider than any count, size or id the project stores


class NotJson(UserError):
    """The text is not JSON at all (as opposed to JSON refused for its size, depth or values)."""


class _TooManyDigits(ValueError):
    pass


class _NotStandard(ValueError):
    """JSON the standard does not allow; the message says what."""


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotStandard(f"holds the number {text[:40]}, beyond the range of a float")
    return value


def _no_constant(name: str) -> float:
    raise _NotStandard(f"holds {name}, which JSON does not allow; write a finite number")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _NotStandard(f"gives the key {key[:60]!r} twice in one object; give each key once")
        seen.add(key)
    return dict(pairs)


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


def loads_bounded(text: str | bytes, source: str, max_depth: int = MAX_DEPTH, strict: bool = False) -> object:
    """The value of the JSON ``text``; ``source`` names it in the one-line UserError for anything refused."""
    hooks = {"parse_float": _finite_float, "parse_constant": _no_constant,
             "object_pairs_hook": _unique_keys} if strict else {}
    try:
        value = json.loads(text, parse_int=_bounded_int, **hooks)
    except _NotStandard as error:
        raise UserError(f"{source} {error}") from None
    except _TooManyDigits as error:
        raise UserError(f"{source} holds a number with {len(str(error).lstrip('-'))} digits; "
                        f"at most {MAX_INT_DIGITS} are accepted") from None
    except RecursionError:
        raise UserError(f"{source} is nested too deeply; at most {max_depth} levels are accepted") from None
    except json.JSONDecodeError as error:
        raise NotJson(f"{source} is not valid JSON ({error.msg}{_where(error)})") from None
    except ValueError as error:  # what else the decoder refuses, e.g. a lone surrogate or bytes not UTF-8
        raise NotJson(f"{source} is not valid JSON ({' '.join(str(error).split())[:120]})") from None
    if depth(value) > max_depth:
        raise UserError(f"{source} is nested too deeply; at most {max_depth} levels are accepted")
    return value


def _where(error: json.JSONDecodeError) -> str:
    return f": line {error.lineno} column {error.colno}" if error.doc.count("\n") else ""

