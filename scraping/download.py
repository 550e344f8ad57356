"""Download the images an items file lists, politely and resumably, to a folder or an S3 prefix.

    python -m scraping.download --items items.csv --out logos/
    python -m scraping.download --items items.csv --out s3://bucket/logos --endpoint-url http://127.0.0.1:8333

Why a thread pool with requests rather than Scrapy's FilesPipeline: the three things this stage must do
well all happen outside the HTTP fetch, where FilesPipeline decides for us. Resume needs a check of our
own manifest before any request (FilesPipeline only knows file age, never whether the stored bytes are
whole); dedupe needs the API's SHA-1 before fetching and the content hash after, across runs (FilesPipeline
names files by a hash of the URL, so two URLs of one image are two files); S3 output must go through
infra.storage, which verifies every upload's ETag and reports errors in one line. A pool of threads with
a per-host semaphore gives the same politeness (2 requests per host at a time), and urllib3's Retry gives
backoff on 429/5xx/timeouts with ``Retry-After`` honoured.

Each file has a deadline (``--deadline``) besides the per-read ``--timeout``: a server that trickles a byte
now and then never trips a read timeout, so a watchdog shuts the file's sockets down when its deadline
passes, whatever phase (headers, body, a retry) the fetch is in. The same watchdog stops the run: on Ctrl-C
or SIGTERM the fetches in flight are cut off, the queued ones dropped, and the manifest written for every
file kept so far, so the next run resumes where this one stopped.

Each image is checked before it is kept: an ``image/*`` content type, at most ``--max-bytes`` (checked
from Content-Length and again while streaming), and bytes that decode (Pillow for raster formats,
cairosvg in its safe mode for SVG). ``manifest.csv`` records every file kept, with its source and credit.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import re
import socket
import tempfile
import threading
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from infra import cli, storage
from infra.atomic import write_text
from infra.errors import UserError
from infra.icons import SvgError, render_svg
from infra.image_files import ImageRefused, open_image
from infra.output_paths import check_output_folder
from scraping.identity import require_contact_for, resolve_contact, user_agent
from scraping.items import read_items
from scraping.manifest import MANIFEST, manifest_text, parse_manifest

RASTER_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif", "ICO": "ico"}
RETRY_STATUSES = (429, 500, 502, 503, 504)
MANIFEST_EVERY = 50  # files kept between manifest saves, so a crash loses little
CHUNK = 64 * 1024
MAX_TIMEOUT = 3600  # seconds without a byte
MAX_DEADLINE = 86400  # seconds for one file, retries included
DEFAULT_DEADLINE = 120.0  # seconds per file, retries included


class Rejected(Exception):
    """An image not kept; the message is the reason counted in the summary."""


OVER_DEADLINE = "over the deadline"
STOPPED = "stopped"  # the reason of fetches cut off by a stop; never counted, the run ends there


class DeadlinePassed(Exception):
    """Raised inside urllib3 when a fetch asks for a connection after its file's deadline."""


_fetching = threading.local()  # the FileDeadline of the fetch this thread runs, if any


class FileDeadline:
    """A watchdog over one file's fetch: at the deadline, every connection the fetch used is shut down, which
    wakes a read blocked on it; a retry that asks for a connection afterwards gets DeadlinePassed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self.connections = []
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True

    def __enter__(self) -> "FileDeadline":
        _fetching.deadline = self
        self.timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.timer.cancel()
        _fetching.deadline = None

    def watch(self, connection) -> None:
        with self.lock:
            if self.expired:
                raise DeadlinePassed
            self.connections.append(connection)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            for connection in self.connections:
                # A response that ends with the connection (HTTP/1.0, "Connection: close") takes the socket
                # from the connection, which then holds None: the socket kept at connect is the one to shut.
                sock = getattr(connection, "sock", None) or getattr(connection, "connected_socket", None)
                if sock is not None:
                    try:  # the plain socket's shutdown, also under TLS: it must not touch the SSL state
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass


class InFlight:
    """The fetches running now, so that a stop (Ctrl-C, SIGTERM) cuts them off at once instead of waiting for
    each to finish or reach its deadline, and no fetch starts after it."""

    def __init__(self):
        self.stopped = False
        self.deadlines: set[FileDeadline] = set()
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def fetch(self, seconds: float) -> Iterator[FileDeadline]:
        with self.lock:
            if self.stopped:
                raise Rejected(STOPPED)
            watch = FileDeadline(seconds)
            self.deadlines.add(watch)
        try:
            with watch:
                yield watch
        finally:
            with self.lock:
                self.deadlines.discard(watch)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            for watch in self.deadlines:
                watch.expire()


class _Watched:
    """A urllib3 pool that hands each connection it gives out to the current fetch's FileDeadline."""

    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout)
        deadline = getattr(_fetching, "deadline", None)
        if deadline is not None:
            try:
                deadline.watch(connection)
            except DeadlinePassed:
                self._put_conn(connection)
                raise
        return connection


class _KeepsSocket:
    """A urllib3 connection that keeps its socket after handing it to a response, for FileDeadline.expire."""

    connected_socket = None

    def connect(self):
        super().connect()
        self.connected_socket = self.sock


class _WatchedHTTPConnection(_KeepsSocket, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_KeepsSocket, HTTPSConnection):
    pass


class _WatchedHTTPPool(_Watched, HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(_Watched, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


@dataclass
class Fetched:
    body: bytes
    extension: str
    content_sha1: str


# ---- fetching and checking -------------------------------------------------------------------------


def http_session(contact: str | None, retries: int, pool_size: int) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent(contact)
    retry = Retry(
        total=retries,
        backoff_factor=0.5,
        status_forcelist=RETRY_STATUSES,
        allowed_methods={"GET"},
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = _WatchedAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def read_limited(chunks, max_bytes: int, deadline: FileDeadline | None = None) -> bytes:
    body = bytearray()
    for chunk in chunks:
        body.extend(chunk)
        if len(body) > max_bytes:
            raise Rejected("too large")
        if deadline is not None and deadline.expired:
            raise Rejected(OVER_DEADLINE)
    return bytes(body)


def fetch(url: str, session: requests.Session, timeout: float, max_bytes: int,
          deadline: float = DEFAULT_DEADLINE, in_flight: InFlight | None = None) -> tuple[str, bytes]:
    """(content type, body) of ``url``, all within ``deadline`` seconds; ``data:`` URLs (inline SVGs from the
    gallery spider) are decoded here."""
    in_flight = in_flight or InFlight()
    if url.startswith("data:"):
        with urllib.request.urlopen(url) as response:  # data: URLs never touch the network
            return response.headers.get_content_type(), read_limited(iter(lambda: response.read(CHUNK), b""), max_bytes)
    with in_flight.fetch(deadline) as watch:
        try:
            with session.get(url, timeout=timeout, stream=True) as response:
                if response.status_code != 200:
                    raise Rejected(f"HTTP {response.status_code}")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if not content_type.startswith("image/"):
                    raise Rejected(f"not an image ({content_type or 'no content type'})")
                if int(response.headers.get("Content-Length") or 0) > max_bytes:
                    raise Rejected("too large")
                body = read_limited(response.iter_content(CHUNK), max_bytes, watch)
        except (requests.exceptions.RequestException, DeadlinePassed) as error:
            if in_flight.stopped:
                raise Rejected(STOPPED) from None
            if watch.expired:
                raise Rejected(OVER_DEADLINE) from None
            timed_out = isinstance(error, requests.exceptions.Timeout)
            raise Rejected("timed out" if timed_out else "connection failed") from None
        if watch.expired:  # a body without a length ends at the shutdown as if it were whole
            raise Rejected(OVER_DEADLINE)
    return content_type, body


def image_extension(content_type: str, body: bytes) -> str:
    """The file extension of a body that decodes as an image; Rejected("undecodable") otherwise."""
    if content_type == "image/svg+xml" or body.lstrip()[:5] in (b"<svg ", b"<?xml"):
        try:
            render_svg(body.decode("utf-8", "replace"), 16)  # within infra.icons' size, pixel, time and memory limits
        except SvgError as error:
            raise Rejected("undecodable" if error.reason == "cannot render" else f"SVG {error.reason}") from None
        return "svg"
    try:
        with open_image(body) as image:  # structure checked, pixels limited, then decoded
            return RASTER_EXTENSIONS.get(image.format, (image.format or "img").lower())
    except ImageRefused as refused:
        raise Rejected("decompression bomb" if refused.reason == "decompression bomb" else "undecodable") from None


def fetch_checked(url: str, session_for, timeout: float, max_bytes: int, host_slots,
                  deadline: float = DEFAULT_DEADLINE, in_flight: InFlight | None = None) -> Fetched:
    with host_slots(url):
        content_type, body = fetch(url, session_for(), timeout, max_bytes, deadline, in_flight)
    extension = image_extension(content_type, body)
    return Fetched(body, extension, hashlib.sha1(body).hexdigest())


class HostSlots:
    """At most ``per_host`` requests in flight to any one host."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self.semaphores: dict[str, threading.BoundedSemaphore] = {}
        self.lock = threading.Lock()

    def __call__(self, url: str) -> threading.BoundedSemaphore:
        host = urlsplit(url).netloc
        with self.lock:
            return self.semaphores.setdefault(host, threading.BoundedSemaphore(self.per_host))


# ---- where files go ----------------------------------------------------------------------------------


def file_stem(item: dict, url: str) -> str:
    """A readable, unique file name stem: the title (or URL file name) plus a short hash of the URL."""
    name = item["title"].split(":", 1)[-1] if item["title"] else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"\.[A-Za-z0-9]{2,5}$", "", name)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"
    return f"{name[:80]}-{hashlib.sha1(url.encode()).hexdigest()[:8]}"


class LocalFolder:
    """Files and manifest in a folder; a file counts as there when its SHA-1 matches the manifest."""

    def __init__(self, root: Path):
        if root.exists() and not root.is_dir():
            raise UserError(f"--out {root}: is a file; give a folder or an s3:// URL")
        check_output_folder(root, "--out")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def read_manifest(self) -> bytes | None:
        path = self.root / MANIFEST
        return path.read_bytes() if path.exists() else None

    def manifest_name(self) -> str:
        return str(self.root / MANIFEST)

    def is_intact(self, row: dict) -> bool:
        path = self.root / row["path"]
        return path.is_file() and hashlib.sha1(path.read_bytes()).hexdigest() == row["content_sha1"]

    def put(self, name: str, body: bytes) -> None:
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=f".{name}.", delete=False) as handle:
            handle.write(body)
        Path(handle.name).replace(self.root / name)

    def write_manifest(self, text: str) -> None:
        write_text(self.root / MANIFEST, text)


class S3Prefix:
    """Objects and manifest under an S3 prefix (via infra.storage); an object counts as there when its
    size matches the manifest (its ETag was verified against the bytes when it was uploaded)."""

    def __init__(self, url: str, client):
        bucket, prefix = storage.split_s3_url(url)
        self.base = f"s3://{bucket}/{prefix.strip('/') + '/' if prefix.strip('/') else ''}"
        self.client = client
        self.sizes = {entry["key"]: entry["size"] for entry in storage.list_objects(self.base, client)}
        self.key_prefix = storage.split_s3_url(self.base)[1]

    def read_manifest(self) -> bytes | None:
        if self.key_prefix + MANIFEST not in self.sizes:
            return None
        with tempfile.TemporaryDirectory() as folder:
            return storage.download_file(self.manifest_name(), Path(folder) / MANIFEST, self.client).read_bytes()

    def manifest_name(self) -> str:
        return self.base + MANIFEST

    def is_intact(self, row: dict) -> bool:
        return str(self.sizes.get(self.key_prefix + row["path"])) == str(row["bytes"])

    def put(self, name: str, body: bytes) -> None:
        self.upload(name, body)

    def write_manifest(self, text: str) -> None:
        self.upload(MANIFEST, text.encode("utf-8"))

    def upload(self, name: str, body: bytes) -> None:
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / name
            local.write_bytes(body)
            storage.upload_file(local, self.base + name, self.client)


# ---- the run -----------------------------------------------------------------------------------------


@dataclass
class Summary:
    downloaded: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: Counter = field(default_factory=Counter)

    def line(self) -> str:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.failed.items()))
        failed = sum(self.failed.values())
        return (f"downloaded {self.downloaded}, skipped {self.skipped} (already there), "
                f"duplicates {self.duplicates}, failed {failed}" + (f" ({reasons})" if reasons else ""))


def source_url(item: dict, original: bool) -> str:
    return item["url"] if original or not item["thumb_url"] else item["thumb_url"]


def manifest_row(path: str, url: str, item: dict, fetched_sha1: str, size: int) -> dict:
    return {
        "path": path, "source_url": url, "sha1": item["sha1"] or fetched_sha1, "content_sha1": fetched_sha1,
        "bytes": size, "licence": item["licence"], "artist": item["artist"], "title": item["title"],
        "page_url": item["page_url"],
    }


def download(items: list[dict], sink, *, original: bool, per_host: int, retries: int, timeout: float,
             max_bytes: int, contact: str | None, progress: bool, deadline: float = DEFAULT_DEADLINE) -> Summary:
    summary = Summary()
    previous = parse_manifest(sink.read_manifest(), sink.manifest_name())
    kept = [row for row in previous if sink.is_intact(row)]
    kept_urls = {row["source_url"] for row in kept}
    seen_sha1 = {row["sha1"] for row in kept}
    seen_content = {row["content_sha1"] for row in kept}

    to_fetch = []  # (item, url) in items order
    for item in items:
        url = source_url(item, original)
        if not url:
            summary.failed["no URL"] += 1
        elif url in kept_urls:
            summary.skipped += 1
        elif item["mime"] and not item["mime"].startswith("image/"):
            summary.failed[f"not an image ({item['mime']})"] += 1
        elif item["sha1"] and item["sha1"] in seen_sha1:
            summary.duplicates += 1
        else:
            if item["sha1"]:
                seen_sha1.add(item["sha1"])
            to_fetch.append((item, url))

    hosts = {urlsplit(url).netloc for _, url in to_fetch}
    workers = max(1, min(32, per_host * len(hosts)))
    local = threading.local()

    def session_for() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = http_session(contact, retries, per_host)
        return local.session

    slots = HostSlots(per_host)
    in_flight = InFlight()
    rows = list(kept)
    bar = tqdm(total=len(to_fetch), desc="Downloading", unit="img", disable=not progress)
    pool = ThreadPoolExecutor(workers)
    try:
        futures = [pool.submit(fetch_checked, url, session_for, timeout, max_bytes, slots, deadline, in_flight)
                   for _, url in to_fetch]
        # Results are taken in items order so that which of two identical images is kept never varies.
        for (item, url), future in zip(to_fetch, futures):
            try:
                fetched = future.result()
            except Rejected as reason:
                summary.failed[str(reason)] += 1
            else:
                if fetched.content_sha1 in seen_content:
                    summary.duplicates += 1
                else:
                    seen_content.add(fetched.content_sha1)
                    name = f"{file_stem(item, url)}.{fetched.extension}"
                    sink.put(name, fetched.body)
                    rows.append(manifest_row(name, url, item, fetched.content_sha1, len(fetched.body)))
                    summary.downloaded += 1
                    if summary.downloaded % MANIFEST_EVERY == 0:
                        sink.write_manifest(manifest_text(rows))
            bar.update()
            bar.set_postfix(new=summary.downloaded, dup=summary.duplicates, failed=sum(summary.failed.values()))
    finally:
        # A stop (or a failed write) cuts off what is in flight and drops what is queued; the manifest is
        # written before the pool's threads are joined, so a second Ctrl-C while they wind up loses nothing.
        in_flight.stop()
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
        if rows != previous:
            sink.write_manifest(manifest_text(rows))
        pool.shutdown(wait=True)
    return summary


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scraping.download",
        description="Download the images an items file lists (from scraping.commons or scraping.gallery, or a "
        "plain list of URLs) into a folder or an S3 prefix, with manifest.csv for attribution. Resumable: files "
        "already there and intact are skipped, and Ctrl-C or SIGTERM stops at once with every file kept so far "
        "in the manifest. Duplicates (same API SHA-1, else same bytes) are kept once.",
        epilog="examples:\n"
        "  python -m scraping.download --items items.csv --out logos/ --contact you@example.org\n"
        "  python -m scraping.download --items urls.txt --out logos/ --per-host 1\n"
        "  python -m scraping.download --items items.jsonl --out s3://my-bucket/logos \\\n"
        "      --endpoint-url http://127.0.0.1:8333\n"
        "The summary counts: downloaded, skipped (already there), duplicates, failed by reason.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--items", type=Path, required=True,
                        help="items .csv or .jsonl (needs a 'url' column), or a text file of URLs, one a line (required)")
    parser.add_argument("--out", required=True, help="folder to write into, or s3://bucket/prefix (required)")
    parser.add_argument("--original", action="store_true",
                        help="fetch original files instead of the thumbnails the items name (default: thumbnails)")
    parser.add_argument("--per-host", type=int, default=2, help="requests in flight to one host at most (default: 2)")
    parser.add_argument("--retries", type=int, default=4,
                        help="retries per image on 429/5xx and timeouts, with backoff and Retry-After (default: 4)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for a server to answer or send more bytes, at most 3600 (default: 30)")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE,
                        help="seconds one file may take in all, retries included, at most 86400; a slower one is cut "
                        f"off and counted as '{OVER_DEADLINE}' (default: {DEFAULT_DEADLINE:g})")
    parser.add_argument("--max-bytes", type=int, default=20_000_000,
                        help="reject images larger than this many bytes (default: 20000000)")
    parser.add_argument("--contact", default=None,
                        help="e-mail or URL for the User-Agent; required for Wikimedia hosts (default: $LOGOGAN_CONTACT)")
    parser.add_argument("--endpoint-url", default=None,
                        help="S3 endpoint for an s3:// --out, e.g. a SeaweedFS or MinIO server (default: $AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--profile", default=None, help="AWS profile for an s3:// --out (default: the usual AWS lookup)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for flag, value in (("--per-host", args.per_host), ("--max-bytes", args.max_bytes)):
        if value < 1:
            raise UserError(f"{flag} {value} must be 1 or more")
    if args.retries < 0:
        raise UserError(f"--retries {args.retries} must be 0 or more")
    cli.check_seconds("--timeout", args.timeout, MAX_TIMEOUT)
    cli.check_seconds("--deadline", args.deadline, MAX_DEADLINE)
    items = read_items(args.items)
    contact = resolve_contact(args.contact)
    require_contact_for((source_url(item, args.original) for item in items), contact)
    for item in items:
        url = source_url(item, args.original)
        if url and urlsplit(url).scheme not in ("http", "https", "data"):
            raise UserError(f"{args.items}: {url!r} is not an http(s) or data: URL")
    if storage.is_s3_url(args.out):
        sink = S3Prefix(args.out, storage.s3_client(args.endpoint_url, args.profile))
    else:
        sink = LocalFolder(Path(args.out))
    with cli.sigterm_as_interrupt():  # a stop keeps the manifest of every file kept so far
        summary = download(items, sink, original=args.original, per_host=args.per_host, retries=args.retries,
                           timeout=args.timeout, max_bytes=args.max_bytes, contact=contact,
                           progress=not args.no_progress, deadline=args.deadline)
    print(f"{args.out}: {summary.line()}")
    return 0


if __name__ == "__main__":
    cli.run(main)
