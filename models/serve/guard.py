"""What every request must pass before a route runs, and the headers every answer carries.

- ``Host`` must name this server (the addresses it is bound to, or a name given with ``--allowed-host``):
  a page on another site whose name an attacker points at 127.0.0.1 (DNS rebinding) is refused.
- A request that changes something (POST, PUT, PATCH, DELETE) must come from this server's own pages or
  from outside any browser: an ``Origin`` of another site, or ``Sec-Fetch-Site: cross-site`` / ``same-site``,
  is refused. Its body must be declared ``application/json``; that is what a cross-site form can never
  send without the browser first asking the server's permission, which this server never gives.
- Answers say: no sniffing, no framing, a Content-Security-Policy the gallery page works under, no
  referrer (a ``?token=`` stays on the page), and, everything but the static files, no caching.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Flask, Response, request

from models.serve.errors import ApiError

MUTATING_METHODS = ("POST", "PUT", "PATCH", "DELETE")
JSON_TYPE = "application/json"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Generated grids are shown from blob: URLs; the page's favicon is an empty data: URL.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}
# A host name, an IPv4 address or a bracketed IPv6 address, and an optional port.
HOST_PATTERN = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?")


def host_literal(address: str) -> str:
    """An address as it appears in a Host header: IPv6 in brackets."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


@dataclass(frozen=True)
class AllowedHosts:
    """``Host`` values served: ``exact`` ones (name and port) and ``names`` with any port."""

    exact: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    def allows(self, host: str) -> bool:
        host = host.lower()
        match = HOST_PATTERN.fullmatch(host)
        return bool(match) and (host in self.exact or match["name"] in self.names)

    def listed(self) -> list[str]:
        return sorted(self.exact | self.names)


# An app made without a bound address (tests, embedding) answers to the loopback names on any port.
LOOPBACK_ANY_PORT = AllowedHosts(names=frozenset(LOOPBACK_NAMES))


def is_wildcard(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def parse_allowed_host(text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:PORT`` from ``--allowed-host``; ValueError saying what a name may be."""
    match = HOST_PATTERN.fullmatch(text.strip().lower())
    if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
        raise ValueError(f"--allowed-host {text!r} is not a host name; give a name or address, optionally "
                         "with :PORT (e.g. logogan.example or 192.168.1.20:5000)")
    return match["name"], int(match["port"]) if match["port"] else None


def served_hosts(bound: str, port: int, extra: list[str] = ()) -> AllowedHosts:
    """The Host values a server bound to ``bound``:``port`` answers: the bound address; for a loopback or
    wildcard bind the loopback names too; and each ``--allowed-host`` (any port unless it names one)."""
    names = {host_literal(bound.lower())} if not is_wildcard(bound) else set()
    if is_wildcard(bound) or is_loopback(bound):
        names.update(LOOPBACK_NAMES)
    exact = {f"{name}:{port}" for name in names}
    if port == 80:  # browsers leave the default port out of Host
        exact |= names
    any_port = set()
    for text in extra:
        name, given_port = parse_allowed_host(text)
        if given_port is None:
            any_port.add(name)
        else:
            exact.add(f"{name}:{given_port}")
    return AllowedHosts(frozenset(exact), frozenset(any_port))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(allowed: AllowedHosts) -> None:
    host = request.headers.get("Host", "")
    if not host:
        raise ApiError(400, "the request has no Host header; send one naming this server", allowed.listed())
    if not allowed.allows(host):
        raise ApiError(400, f"Host {host[:100]!r} is not served here; use one of {', '.join(allowed.listed())}, or "
                            f"start the server with --allowed-host NAME for a name of your own", allowed.listed())


def check_same_origin() -> None:
    """A mutating request from a page of another site or origin is refused."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site in ("cross-site", "same-site"):
        raise ApiError(403, f"{request.method} from another site is refused (Sec-Fetch-Site: {fetch_site}); "
                            "use this server's own page or a client outside the browser")
    origin = request.headers.get("Origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()):
        raise ApiError(403, f"{request.method} from origin {origin[:100]!r} is refused; only this server's own "
                            f"pages ({request.host_url.rstrip('/')}) may change anything")


def has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def check_json_body() -> None:
    """POST, PUT and PATCH declare a JSON body; DELETE does when it sends one."""
    if request.method == "DELETE" and not has_body():
        return
    if request.mimetype != JSON_TYPE:
        given = request.headers.get("Content-Type") or "none"
        raise ApiError(415, f"{request.method} {request.path} takes Content-Type: {JSON_TYPE}, not {given[:100]!r}; "
                            "send the config as a JSON body (curl: --json @config.json)", [JSON_TYPE])


def install(app: Flask, allowed: AllowedHosts = LOOPBACK_ANY_PORT) -> None:
    """Register the checks (before any other ``before_request``) and the headers."""

    @app.before_request
    def guard_request():
        check_host(allowed)
        if request.method in MUTATING_METHODS:
            check_same_origin()
            if request.url_rule is not None:  # unknown routes and methods answer 404 / 405 as before
                check_json_body()

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response
