"""The server's access log without its secret: a token given as ``?token=`` is logged as ``token=[redacted]``.

One line per answered request, in the common log format, through the logger ``models.serve.access``.
"""
from __future__ import annotations

import logging
import re
import time
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
LOGGER = logging.getLogger("models.serve.access")
# A query runs from "?" to the end of the request's path: the log line puts a space after it. Decoded
# quotes and the like inside it are still part of it.
QUERY = re.compile(r"\?[^\s\x1b]*")


def _redact_pair(pair: str) -> str:
    key = pair.split("=", 1)[0]
    return f"{key}={REDACTED}" if unquote_plus(key) == "token" else pair  # tok%65n is a token too


def redact_token(text: str) -> str:
    """``text`` with the value of every ``token`` query parameter replaced."""
    return QUERY.sub(lambda query: "?" + "&".join(map(_redact_pair, query.group(0)[1:].split("&"))), text)


def request_line(environ: dict) -> str:
    """The request line as sent, from the WSGI environ (the path as the client wrote it, escapes and all)."""
    target = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if not target:
        path = environ.get("PATH_INFO", "").encode("latin-1", "replace").decode("utf-8", "replace")
        query = environ.get("QUERY_STRING", "")
        target = path + (f"?{query}" if query else "")
    return f"{environ.get('REQUEST_METHOD', '-')} {target} {environ.get('SERVER_PROTOCOL', '-')}"


class AccessLog:
    """WSGI middleware: logs each request once its answer has started."""

    def __init__(self, app, logger: logging.Logger = LOGGER):
        self.app = app
        self.logger = logger

    def __call__(self, environ, start_response):
        def logging_start_response(status, headers, exc_info=None):
            length = next((value for key, value in headers if key.lower() == "content-length"), "-")
            when = time.strftime("%d/%b/%Y %H:%M:%S")
            self.logger.info('%s - - [%s] "%s" %s %s', environ.get("REMOTE_ADDR", "-"), when,
                             redact_token(request_line(environ)), status.split(" ", 1)[0], length)
            return start_response(status, headers, exc_info)

        return self.app(environ, logging_start_response)
