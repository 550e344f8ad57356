"""The one exception every layer raises for input a user can fix.

It lives apart from the command-line plumbing (:mod:`infra.cli`) because it is raised far from any
command: in dataset readers, network builders and the web server, which report it in their own way.
"""
from __future__ import annotations

import json

SHOWN_CHARACTERS = 80  # of a bad value in an error line; a value pasted by mistake may be megabytes long


class UserError(Exception):
    """Bad input a user can fix; its message names what is wrong and what is allowed."""


def shown(value: object) -> str:
    """A bad value as JSON for an error line, cut to SHOWN_CHARACTERS with its size named, so that the error
    stays one short line whatever was given."""
    text = json.dumps(value, default=repr)
    if len(text) <= SHOWN_CHARACTERS:
        return text
    size = f"{len(value)} items" if isinstance(value, (list, dict)) else f"{len(str(value))} characters"
    return f"{text[:SHOWN_CHARACTERS]}... ({size})"


def quoted(text: str) -> str:
    """A bad string as Python quotes it (``'many'``), cut to SHOWN_CHARACTERS with its length named: for values
    that arrive as text (a query parameter, a path), where JSON's quoting would be a second language."""
    if len(text) <= SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:SHOWN_CHARACTERS]!r}... ({len(text)} characters)"
