"""A small MediaWiki stand-in on 127.0.0.1 for the scraping tests: api.php answers of the real shape,
image bodies, robots.txt and a few HTML pages, with scripted faults (429 + Retry-After, maxlag, 500).

It checks the API parameters the way MediaWiki does (an ``error`` answer for a bad value) and records
every request, with the most requests of each kind it saw in flight at once, for politeness assertions.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from PIL import Image

WIKIMEDIA_ROBOTS = "User-agent: *\nAllow: /w/load.php?\nDisallow: /w/\nDisallow: /private/\n"
THUMB_WIDTHS = {20, 40, 60, 120, 250, 330, 500, 960, 1280, 1920}
IIPROP = {"url", "size", "mime", "sha1", "extmetadata"}


def png_bytes(index: int, side: int = 4) -> bytes:
    """A tiny PNG whose colour encodes ``index``, so every index gives different bytes."""
    colour = (index % 256, (index // 256) % 256, 7)
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def noise_png(side: int) -> bytes:
    """An incompressible PNG, for the oversized-body case."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), hashlib.shake_256(b"noise").digest(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="5"/></svg>'
CORRUPT = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4


@dataclass
class WikiFile:
    body: bytes
    content_type: str
    mime: str  # what the API says
    sha1: str  # what the API says (normally the body's SHA-1)
    width: int = 4
    height: int = 4


@dataclass
class Category:
    files: list[str] = field(default_factory=list)
    subcats: list[str] = field(default_factory=list)


class WikiServer:
    def __init__(self):
        self.files: dict[str, WikiFile] = {}
        self.categories: dict[str, Category] = {}
        self.pages: dict[str, str] = {}  # path -> HTML
        self.faults: dict[str, list[tuple[int, dict, bytes]]] = {}  # fault key -> answers to give first
        self.log: list[dict] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.api_url = f"{self.base}/w/api.php"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ---- set-up ------------------------------------------------------------------------------------

    def add_file(self, name: str, body: bytes, content_type: str, *, mime: str | None = None, sha1: str | None = None):
        self.files[name] = WikiFile(body, content_type, mime or content_type, sha1 or hashlib.sha1(body).hexdigest())

    def add_category(self, title: str, files=(), subcats=()):
        self.categories[title] = Category(list(files), list(subcats))

    def fail_first(self, key: str, status: int, headers: dict | None = None, body: bytes = b"") -> None:
        """Answer the next request with this fault ``key`` this way, then normally."""
        self.faults.setdefault(key, []).append((status, headers or {}, body))

    def original_url(self, name: str) -> str:
        return f"{self.base}/images/{quote(name)}"

    def thumb_url(self, name: str, width: int) -> str:
        return f"{self.base}/thumb/{width}px-{quote(name)}"

    def requests_to(self, prefix: str) -> list[dict]:
        return [entry for entry in self.log if entry["path"].startswith(prefix)]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # ---- answers -----------------------------------------------------------------------------------

    def api_answer(self, params: dict) -> tuple[str | None, dict]:
        """(fault key, JSON answer) for an api.php query."""
        def error(code, info):
            return None, {"error": {"code": code, "info": info, "docref": "See api.php for API usage."}}

        for name, wanted in (("action", "query"), ("format", "json"), ("formatversion", "2"), ("maxlag", "5")):
            if params.get(name) != wanted:
                return error("badvalue", f"Expected {name}={wanted}, got {params.get(name)!r}.")
        if params.get("generator") == "categorymembers":
            if params.get("gcmtype") != "file" or params.get("prop") != "imageinfo":
                return error("badvalue", "gcmtype must be file and prop imageinfo here.")
            if set(params.get("iiprop", "").split("|")) != IIPROP:
                return error("badvalue", f"Unexpected iiprop {params.get('iiprop')!r}.")
            width = int(params.get("iiurlwidth", "0"))
            if width not in THUMB_WIDTHS:
                return error("badvalue", f"iiurlwidth {width} is not a standard width.")
            title = params.get("gcmtitle", "")
            offset = int(params["gcmcontinue"].rsplit("|", 1)[1]) if "gcmcontinue" in params else 0
            limit = int(params.get("gcmlimit", "10"))
            names = self.categories[title].files if title in self.categories else []
            answer = {"batchcomplete": True}
            if names:
                answer["query"] = {"pages": [self.page(name, width) for name in names[offset : offset + limit]]}
            if offset + limit < len(names):
                answer["continue"] = {"gcmcontinue": f"file|{names[offset + limit].encode().hex()}|{offset + limit}",
                                      "continue": "gcmcontinue||"}
            return f"files:{title}:{offset}", answer
        if params.get("list") == "categorymembers" and params.get("cmtype") == "subcat":
            title = params.get("cmtitle", "")
            members = self.categories[title].subcats if title in self.categories else []
            answer = {"batchcomplete": True, "query": {"categorymembers": [
                {"pageid": 9000 + index, "ns": 14, "title": member} for index, member in enumerate(members)]}}
            return f"subcats:{title}", answer
        return error("badvalue", "Unrecognized query.")

    def page(self, name: str, width: int) -> dict:
        file = self.files[name]
        pageid = 1000 + list(self.files).index(name)
        return {
            "pageid": pageid, "ns": 6, "title": f"File:{name}", "imagerepository": "local",
            "imageinfo": [{
                "size": len(file.body), "width": file.width, "height": file.height,
                "thumburl": self.thumb_url(name, width), "thumbwidth": width, "thumbheight": width,
                "responsiveUrls": {}, "url": self.original_url(name),
                "descriptionurl": f"{self.base}/wiki/File:{quote(name)}",
                "descriptionshorturl": f"{self.base}/w/index.php?curid={pageid}",
                "sha1": file.sha1, "mime": file.mime,
                "extmetadata": {
                    "LicenseShortName": {"value": "CC BY-SA 4.0", "source": "commons-desc-page", "hidden": ""},
                    "Artist": {"value": f'<a href="//example.org/wiki/User:Artist{pageid}">Artist {pageid}</a>',
                               "source": "commons-desc-page"},
                },
            }],
        }

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlsplit(self.path)
                kind = "api" if url.path == "/w/api.php" else url.path.split("/")[1]
                with server.lock:
                    server.log.append({"time": time.monotonic(), "path": url.path, "query": dict(parse_qsl(url.query)),
                                       "user_agent": self.headers.get("User-Agent", "")})
                    server.in_flight[kind] = server.in_flight.get(kind, 0) + 1
                    server.max_in_flight[kind] = max(server.max_in_flight.get(kind, 0), server.in_flight[kind])
                try:
                    time.sleep(0.002)  # long enough for overlapping requests to be seen overlapping
                    self.answer(url)
                finally:
                    with server.lock:
                        server.in_flight[kind] -= 1

            def answer(self, url):
                if url.path == "/robots.txt":
                    return self.send(200, "text/plain", WIKIMEDIA_ROBOTS.encode())
                if url.path == "/w/api.php":
                    key, answer = server.api_answer(dict(parse_qsl(url.query)))
                    if self.fault(key):
                        return None
                    return self.send(200, "application/json; charset=utf-8", json.dumps(answer).encode())
                if self.fault(url.path):
                    return None
                if url.path.startswith("/images/") or url.path.startswith("/thumb/"):
                    name = unquote(url.path.rsplit("/", 1)[1])
                    if url.path.startswith("/thumb/"):
                        name = name.split("px-", 1)[1]
                    if name in server.files:
                        file = server.files[name]
                        return self.send(200, file.content_type, file.body)
                if url.path in server.pages:
                    return self.send(200, "text/html; charset=utf-8", server.pages[url.path].encode())
                return self.send(404, "text/plain", b"not found")

            def fault(self, key) -> bool:
                with server.lock:
                    queued = server.faults.get(key)
                    status, headers, body = queued.pop(0) if queued else (None, None, None)
                if status is None:
                    return False
                self.send(status, "application/json", body, headers)
                return True

            def send(self, status, content_type, body, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


def maxlag_body() -> bytes:
    return json.dumps({"error": {"code": "maxlag", "info": "Waiting for 10.0.0.7: 7 seconds lagged.",
                                 "host": "10.0.0.7", "lag": 7, "type": "db"}, "servedby": "mw1"}).encode()
