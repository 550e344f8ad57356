"""Every failed request answers with JSON: what is wrong and, where it helps, what is allowed."""
from __future__ import annotations

from typing import Callable

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from infra.errors import UserError


class ApiError(Exception):
    """A 4xx answer: ``message`` says what is wrong; ``allowed`` (optional) lists what would work."""

    def __init__(self, status: int, message: str, allowed: object = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.allowed = allowed


def _answer(status: int, message: str, allowed: object = None):
    body = {"error": message, "status": status}
    if allowed is not None:
        body["allowed"] = allowed
    return jsonify(body), status


def register_error_handlers(app: Flask, hide_paths: Callable[[str], str] = str) -> None:
    """``hide_paths`` rewrites the server's own folders out of messages (see models.serve.app.path_hider)."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return _answer(error.status, hide_paths(error.message), error.allowed)

    @app.errorhandler(UserError)
    def user_error(error: UserError):
        # Raised by the trainer's own checks (a config, a class name): the user can fix it.
        return _answer(400, hide_paths(str(error)))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # Flask's own 4xx (unknown routes, wrong methods, oversized uploads), as JSON like the rest.
        if isinstance(error, NotFound) and request.url_rule is None:
            routes = sorted({rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"})
            return _answer(404, f"no route {request.path}", routes)
        if isinstance(error, MethodNotAllowed):
            return _answer(405, f"{request.method} is not allowed on {request.path}", sorted(error.valid_methods or ()))
        if isinstance(error, RequestEntityTooLarge):
            limit = app.config["MAX_CONTENT_LENGTH"] // 1024
            return _answer(413, f"the request is larger than {limit} KiB; a config is a small JSON file")
        return _answer(error.code or 500, error.description or error.name)
