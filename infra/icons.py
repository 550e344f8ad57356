"""Render single-colour SVG icons to square RGB images, and list the icon sets that ship as packages.

Shared by the collection stage (``scraping.rasterize``) and preprocessing (``preprocessing.simple_icons``),
so neither reaches into the other.

cairosvg runs in its default safe mode: no external files or URLs are fetched and XML entities are not
expanded, so an untrusted SVG cannot read local files or reach the network.

An SVG can still ask for unbounded work: megabytes of paths, or a PNG of 20000x20000 pixels embedded as a
data: URI that cairosvg decodes in full. So :func:`render_svg` first checks the SVG's size in bytes and the
pixels its embedded images declare (read from their headers, nothing decoded), then renders in a worker
process with a cap on its memory (RLIMIT_AS) and a time limit, killed and replaced when it runs over. The
workers are reused, so the common case costs one round trip through a pipe. Every refusal is an
:class:`SvgError` whose ``reason`` a folder run counts.
"""
from __future__ import annotations

import atexit
import base64
import binascii
import html
import io
import json
import os
import re
import resource
import select
import struct
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote_to_bytes

import numpy as np
from PIL import Image

from infra.image_files import declared_pixels

WHITE = (255, 255, 255)
_SVG_OPEN_TAG = re.compile(r"<svg\b", re.IGNORECASE)
_SVG_ROOT_TAG = re.compile(r"<svg\b[^>]*>", re.IGNORECASE)
_SIZE_ATTRIBUTE = re.compile(r"""\s(?:width|height|viewBox)\s*=\s*(?:"[^"]*"|'[^']*')""", re.IGNORECASE)
UNDEFINED_SIZE = "SVG size is undefined"  # cairosvg's ValueError for an SVG with no viewBox, width or height
# User units each side of the origin searched for the drawing of an SVG with no size: the wide window's pixel
# is about 20 units at BOUNDS_PIXELS, the narrow one's 0.2, for a drawing too small to paint one of those.
BOUNDS_WINDOWS = (10000.0, 100.0)
BOUNDS_PIXELS = 1024  # the searches' render size
MIB = 1024 * 1024
MAX_SVG_BYTES = 8 * MIB  # icon sets' largest files are a few hundred KB
MAX_EMBEDDED_PIXELS = 4096 * 4096  # in all embedded images of one SVG, nested SVGs' included
MAX_NESTED_SVGS = 4  # an SVG embedding an SVG embedding ...
RENDER_SECONDS = 20.0  # per file; icons render in milliseconds
RENDER_MEMORY_BYTES = 1024 * MIB  # address space a render may add to its worker's own
_DATA_URI = re.compile(r"data:([^,;\"'\s)]*)((?:;[^,\"'\s)]*)*),([^\"'<>)]*)", re.IGNORECASE)
_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])


class SvgError(ValueError):
    """An SVG that was not rendered; ``reason`` is a short label a folder run counts."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Icon:
    """One icon: its SVG source, a stable slug, and where it came from."""

    slug: str
    title: str
    svg: str
    colour: str | None  # "#RRGGBB" brand colour, when the set has one
    source: str
    licence: str


def parse_hex_colour(text: str) -> tuple[int, int, int]:
    value = text.lstrip("#")
    if not re.fullmatch(r"[0-9a-fA-F]{6}", value):
        raise ValueError(f"colour {text!r} is not of the form #RRGGBB")
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))


def with_fill(svg: str, colour: str) -> str:
    """Give the root element a fill, which unfilled paths inherit (single-colour icon sets leave it unset)."""
    return _SVG_OPEN_TAG.sub(f'<svg fill="{colour}"', svg, count=1)


GZIP_MAGIC = b"\x1f\x8b"
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def svg_file_text(data: bytes, max_bytes: int = MAX_SVG_BYTES) -> str:
    """The text of an SVG file as editors and icon themes save it: UTF-8 (with or without a byte-order mark),
    UTF-16 with its mark, or gzip-compressed (``.svgz``), unpacked only up to ``max_bytes`` so that a gzip bomb
    stops there. Raises SvgError for a gzip file that is damaged or unpacks to more than ``max_bytes``."""
    if data[:2] == GZIP_MAGIC:
        unpacker = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)  # the gzip container
        try:
            data = unpacker.decompress(data, max_bytes + 1)
        except zlib.error as error:
            raise SvgError("corrupt", f"a damaged gzip file ({error})") from None
        if len(data) > max_bytes:
            raise SvgError("SVG too large", f"it unpacks to more than {max_bytes} bytes")
        if not unpacker.eof:
            raise SvgError("corrupt", "a gzip file cut short")
    if data[:2] in UTF16_MARKS:
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def check_svg(svg: str | bytes, max_bytes: int = MAX_SVG_BYTES) -> None:
    """Raise SvgError unless ``svg`` is at most ``max_bytes`` and its embedded images are within the limit."""
    data = svg.encode("utf-8", "replace") if isinstance(svg, str) else svg
    if len(data) > max_bytes:
        raise SvgError("SVG too large", f"{len(data)} bytes; at most {max_bytes} are accepted")
    pixels = _embedded_pixels(data, 0)
    if pixels > MAX_EMBEDDED_PIXELS:
        raise SvgError("embedded images too large",
                       f"they declare {pixels} pixels; at most {MAX_EMBEDDED_PIXELS} are accepted")


def _embedded_pixels(data: bytes, nesting: int) -> int:
    """The pixels the data: URIs in ``data`` declare, counted from their headers, nested SVGs included."""
    total = 0
    # The XML parser resolves character references (&#100;ata:) before cairosvg sees an href; so does this.
    for match in _DATA_URI.finditer(html.unescape(data.decode("utf-8", "replace"))):
        mime, parameters, payload = match.groups()
        try:
            if "base64" in parameters.lower():
                compact = re.sub(r"\s+", "", payload)
                body = base64.b64decode(compact + "=" * (-len(compact) % 4))
            else:
                body = unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            continue  # cairosvg cannot decode it either
        if "svg" in mime.lower() or body.lstrip()[:1] == b"<":
            if nesting >= MAX_NESTED_SVGS:
                raise SvgError("embedded images too large", f"SVGs nest more than {MAX_NESTED_SVGS} deep")
            total += _embedded_pixels(body, nesting + 1)
        else:
            total += declared_pixels(body) or 0
        if total > MAX_EMBEDDED_PIXELS:
            break
    return total


def render_svg(
    svg: str,
    size: int,
    fill: str | None = None,
    background: tuple[int, int, int] | None = WHITE,
    margin: float = 0.0,
    *,
    time_limit: float = RENDER_SECONDS,
) -> Image.Image:
    """Render ``svg`` centred on a ``size``×``size`` canvas, aspect ratio kept.

    ``margin`` is the fraction of the canvas left empty on each side. With ``background=None`` the result
    is RGBA on transparency; otherwise RGB with transparency flattened onto the background. An SVG over the
    limits (see :func:`check_svg`), slower than ``time_limit`` seconds or needing more memory than
    :data:`RENDER_MEMORY_BYTES`, or one cairosvg cannot render, raises :class:`SvgError`.
    """
    check_svg(svg)
    request = {"svg": svg, "size": size, "fill": fill, "background": background, "margin": margin}
    return _WORKERS.render(request, time_limit)


def _render_in_this_process(
    svg: str, size: int, fill: str | None, background: tuple[int, int, int] | None, margin: float
) -> Image.Image:
    """The render itself, without limits: only the workers call it."""
    import cairosvg

    if fill is not None:
        svg = with_fill(svg, fill)
    inner = max(1, round(size * (1 - 2 * margin)))
    # Render the longer side to `inner` pixels; cairosvg keeps the aspect ratio when given one dimension.
    try:
        probe = Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg.encode(), output_width=64)))
    except ValueError as error:
        if UNDEFINED_SIZE not in str(error):
            raise
        svg = with_content_bounds(svg)
        probe = Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg.encode(), output_width=64)))
    width, height = probe.size
    scale_by_width = width >= height
    png = cairosvg.svg2png(
        bytestring=svg.encode(),
        output_width=inner if scale_by_width else None,
        output_height=None if scale_by_width else inner,
    )
    icon = Image.open(io.BytesIO(png)).convert("RGBA")
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.alpha_composite(icon, ((size - icon.width) // 2, (size - icon.height) // 2))
    if background is None:
        return canvas
    flattened = Image.new("RGBA", (size, size), tuple(background) + (255,))
    flattened.alpha_composite(canvas)
    return flattened.convert("RGB")


def with_content_bounds(svg: str) -> str:
    """``svg``, which gives no size of its own (no viewBox, no absolute width and height: hand-written and some
    exported files), with its drawing's bounds as its viewBox. A browser would show such a file at 300x150
    pixels, cutting off whatever lies outside; a logo wants its whole mark. The bounds are found where cairosvg
    paints: first in a wide window (a narrower one when a drawing is too small to paint a pixel of the wide
    one), then in a close one around what that found."""
    for reach in BOUNDS_WINDOWS:
        window = _painted_bounds(svg, (-reach, -reach, 2 * reach, 2 * reach))
        if window is not None:
            return _with_root_size(svg, _painted_bounds(svg, window) or window)
    raise SvgError("cannot render", "it gives no size (no viewBox, width or height) and draws nothing within "
                   f"{BOUNDS_WINDOWS[0]:g} units of its origin")


def _painted_bounds(svg: str, window: tuple) -> tuple | None:
    """(x, y, width, height) in user units of what ``svg`` paints within ``window``, padded by one pixel of the
    render; None when it paints nothing there."""
    import cairosvg

    x, y, width, height = window
    scale = BOUNDS_PIXELS / max(width, height)
    pixels = np.asarray(Image.open(io.BytesIO(cairosvg.svg2png(bytestring=_with_root_size(svg, window).encode())))
                        .convert("RGBA"))[..., 3]
    rows, columns = np.nonzero(pixels.any(axis=1))[0], np.nonzero(pixels.any(axis=0))[0]
    if rows.size == 0:
        return None
    left, top = x + (columns[0] - 1) / scale, y + (rows[0] - 1) / scale
    return left, top, (columns[-1] + 2) / scale + x - left, (rows[-1] + 2) / scale + y - top


def _with_root_size(svg: str, window: tuple) -> str:
    """``svg`` with its root's width, height and viewBox replaced: ``window`` drawn at BOUNDS_PIXELS on its
    longer side."""
    x, y, width, height = (float(value) for value in window)
    scale = BOUNDS_PIXELS / max(width, height)
    root = _SVG_ROOT_TAG.search(svg)
    if root is None:
        raise SvgError("cannot render", "no <svg> element")
    tag = _SIZE_ATTRIBUTE.sub("", root.group(0))
    sized = (f'<svg width="{max(1, round(width * scale))}" height="{max(1, round(height * scale))}" '
             f'viewBox="{x!r} {y!r} {width!r} {height!r}"' + tag[len("<svg"):])
    return svg[:root.start()] + sized + svg[root.end():]


# ---- render workers ----------------------------------------------------------------------------------
# Messages on the pipes are a 4-byte length and that many bytes: a JSON request; a JSON reply header, then
# the pixels. No pickle: a worker's reply is read as data only.

_WORKER_CODE = "from infra.icons import serve_renders; serve_renders({memory})"


def _send(stream, payload: bytes) -> None:
    stream.write(struct.pack(">I", len(payload)) + payload)
    stream.flush()


def _receive_exactly(fd: int, count: int, deadline: float | None) -> bytes:
    import time

    chunks, left = [], count
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int, deadline: float | None) -> bytes:
    (length,) = struct.unpack(">I", _receive_exactly(fd, 4, deadline))
    return _receive_exactly(fd, length, deadline)


def serve_renders(memory_bytes: int = RENDER_MEMORY_BYTES) -> None:
    """A worker's loop: render each request from stdin and reply on stdout, until stdin closes."""
    import cairosvg  # noqa: F401  (imported before the memory cap is measured)

    pages = int(Path("/proc/self/statm").read_text().split()[0])
    limit = pages * os.sysconf("SC_PAGE_SIZE") + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing a library prints may end up in the replies
    stdin = sys.stdin.fileno()
    while True:
        try:
            request = json.loads(_receive(stdin, None))
        except EOFError:
            return
        try:
            image = _render_in_this_process(request["svg"], request["size"], request["fill"],
                                            request["background"], request["margin"])
            header, pixels = {"mode": image.mode, "size": list(image.size)}, image.tobytes()
        except MemoryError:
            header, pixels = {"error": "needs too much memory"}, b""
        except Exception as error:  # cairosvg/ElementTree raise many kinds for a bad SVG; each is reported
            text = " ".join(str(error).split())[:160]
            if "NO_MEMORY" in text.upper():
                header = {"error": "needs too much memory"}
            else:
                header = {"error": "cannot render", "detail": f"{type(error).__name__}: {text}"}
            pixels = b""
        _send(reply, json.dumps(header).encode())
        _send(reply, pixels)


class _Worker:
    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (_PROJECT_ROOT, os.environ.get("PYTHONPATH"))))}
        code = _WORKER_CODE.format(memory=int(RENDER_MEMORY_BYTES))
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, cwd=_PROJECT_ROOT)

    def render(self, request: dict, time_limit: float) -> Image.Image:
        import time

        _send(self.process.stdin, json.dumps(request).encode())
        deadline = time.monotonic() + time_limit
        header = json.loads(_receive(self.process.stdout.fileno(), deadline))
        pixels = _receive(self.process.stdout.fileno(), deadline)
        if "error" in header:
            raise SvgError(header["error"], header.get("detail", f"more than {RENDER_MEMORY_BYTES // MIB} MiB"))
        return Image.frombytes(header["mode"], tuple(header["size"]), pixels)

    def stop(self) -> int | None:
        self.process.kill()
        self.process.stdin.close()
        self.process.stdout.close()
        return self.process.wait()


class _WorkerPool:
    """Reusable render workers, at most one per core; one that runs over its limits is killed and replaced."""

    def __init__(self):
        self.lock = threading.Condition()
        self.idle: list[_Worker] = []
        self.busy = 0
        self.owner = os.getpid()

    def render(self, request: dict, time_limit: float) -> Image.Image:
        worker = self._take()
        try:
            image = worker.render(request, time_limit)
        except TimeoutError:
            worker.stop()
            worker = None
            raise SvgError("too slow to render", f"took more than {time_limit:g} s") from None
        except (EOFError, OSError, ValueError) as error:
            if isinstance(error, SvgError):
                raise
            code = worker.stop()
            worker = None
            raise SvgError("needs too much memory", f"the renderer stopped (exit status {code})") from None
        finally:
            self._give_back(worker)
        return image

    def _take(self) -> _Worker:
        with self.lock:
            if self.owner != os.getpid():  # a forked copy: the parent's workers are not ours to use
                self.idle, self.busy, self.owner = [], 0, os.getpid()
            while not self.idle and self.busy >= (os.cpu_count() or 1):
                self.lock.wait()
            self.busy += 1
            if self.idle:
                return self.idle.pop()
        try:
            return _Worker()
        except BaseException:
            self._give_back(None)
            raise

    def _give_back(self, worker: _Worker | None) -> None:
        with self.lock:
            self.busy -= 1
            if worker is not None:
                self.idle.append(worker)
            self.lock.notify()

    def close(self) -> None:
        with self.lock:
            workers, self.idle = self.idle, []
        if self.owner == os.getpid():
            for worker in workers:
                worker.stop()


_WORKERS = _WorkerPool()
atexit.register(_WORKERS.close)


def simple_icons() -> Iterator[Icon]:
    """Every Simple Icons brand logo (PyPI ``simple-icons-pack``, CC0), sorted by slug."""
    import simple_icons_pack

    icons = [getattr(simple_icons_pack, name) for name in dir(simple_icons_pack) if name.startswith("SI_")]
    for icon in sorted(icons, key=lambda icon: icon.slug):
        yield Icon(
            slug=icon.slug,
            title=icon.title,
            svg=icon.svg,
            colour=f"#{icon.hex}",
            source=f"simple-icons-pack {simple_icons_pack_version()}",
            licence="CC0-1.0 (icon files); the marks are trademarks of their owners",
        )


def simple_icons_pack_version() -> str:
    from importlib.metadata import version

    return version("simple-icons-pack")


def to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.uint8)
