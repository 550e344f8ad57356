"""A small npm registry stand-in on 127.0.0.1: package metadata (the abbreviated form npm clients ask for) and
tarballs, for the Iconify tests; plus the tarballs themselves, built in memory.

Every request is recorded, so a test can tell what was fetched and how often.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

SCOPE = "@iconify-json"


def tarball(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A gzipped tar of ``members`` (name -> bytes, names used as given, ``../`` included) and symlinks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def iconify_tarball(icons: dict, info: dict | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """An ``@iconify-json`` package as npm publishes it: icons.json, info.json and package.json under package/."""
    members = {"package/package.json": json.dumps({"name": f"{SCOPE}/{icons.get('prefix')}"}).encode(),
               "package/icons.json": json.dumps(icons).encode()}
    if info is not None:
        members["package/info.json"] = json.dumps(info).encode()
    return tarball({**members, **(extra or {})})


def sri(body: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(body).digest()).decode()


@dataclass
class Published:
    body: bytes
    integrity: str
    shasum: str


class NpmRegistry:
    def __init__(self):
        self.packages: dict[str, dict[str, Published]] = {}  # set name -> version -> tarball
        self.latest: dict[str, str] = {}
        self.log: list[str] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def publish(self, name: str, version: str, body: bytes, integrity: str | None = None,
                shasum: str | None = None) -> None:
        """Publish ``body``; ``integrity``/``shasum`` override the true hashes (``""`` leaves one out)."""
        true_shasum = hashlib.sha1(body).hexdigest()
        self.packages.setdefault(name, {})[version] = Published(
            body, sri(body) if integrity is None else integrity, true_shasum if shasum is None else shasum)
        self.latest[name] = version

    def tarball_requests(self) -> int:
        return sum(path.endswith(".tgz") for path in self.log)

    def metadata(self, name: str) -> dict:
        versions = {}
        for version, published in self.packages[name].items():
            dist = {"tarball": f"{self.url}/{SCOPE}/{name}/-/{name}-{version}.tgz", "shasum": published.shasum}
            if published.integrity:
                dist["integrity"] = published.integrity
            versions[version] = {"name": f"{SCOPE}/{name}", "version": version, "dist": dist}
        return {"name": f"{SCOPE}/{name}", "dist-tags": {"latest": self.latest[name]}, "versions": versions}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()

    def _handler_class(self):
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = unquote(self.path)
                with registry.lock:
                    registry.log.append(path)
                prefix = f"/{SCOPE}/"
                name = path[len(prefix):] if path.startswith(prefix) else ""
                if name in registry.packages:
                    return self.send(200, json.dumps(registry.metadata(name)).encode(), "application/json")
                package, _, file = name.partition("/-/")
                for version, published in registry.packages.get(package, {}).items():
                    if file == f"{package}-{version}.tgz":
                        return self.send(200, published.body, "application/octet-stream")
                self.send(404, b'{"error":"Not found"}', "application/json")

        return Handler
