"""The server's access log without its secret: a token given as ``?token=`` is logged as ``token=[redacted]``."""
from __future__ import annotations

import re
from urllib.parse import unquote_plus

from werkzeug.serving import WSGIRequestHandler

REDACTED = "[redacted]"
# A query runs from "?" to the end of the request's path: werkzeug's log line puts a space (or, on a
# terminal, a colour code) after it. Decoded quotes and the like inside it are still part of it.
QUERY = re.compile(r"\?[^\s\x1b]*")


def _redact_pair(pair: str) -> str:
    key = pair.split("=", 1)[0]
    return f"{key}={REDACTED}" if unquote_plus(key) == "token" else pair  # tok%65n is a token too


def redact_token(text: str) -> str:
    """``text`` with the value of every ``token`` query parameter replaced."""
    return QUERY.sub(lambda query: "?" + "&".join(map(_redact_pair, query.group(0)[1:].split("&"))), text)


class RedactingRequestHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args) -> None:
        super().log(type, "%s", redact_token(message % args if args else message))
