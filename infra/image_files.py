"""Open image files a user or a server handed us, the one guarded way every stage does it.

Opening is where real-world files go wrong: huge declared sizes (decompression bombs), truncated
downloads, files that are not images at all, files of gigabytes. Each failure becomes an
:class:`ImageRefused` with a short reason that a stage counts, or, for a file named on the command line,
a one-line :class:`~infra.errors.UserError`. Pillow's pixel limit is checked before any pixel is decoded.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Iterator

from PIL import Image, UnidentifiedImageError

from infra.errors import UserError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own warning limit (a 9,459 x 9,459 image)
MAX_FILE_BYTES = 512 * 1024 * 1024  # no logo sheet or sample comes near this; the bytes are read into memory


class ImageRefused(Exception):
    """An image file that cannot be used; ``reason`` is one of a few short labels."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@contextlib.contextmanager
def _pixel_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's limit is a module global: set it for this open only, so other code keeps its own."""
    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode image bytes fully, after checking their structure; oversized images are refused.

    Pillow only *warns* between ``max_pixels`` and twice that; here the warning is an error, so a
    declared size above ``max_pixels`` is refused before any pixel is decoded.
    """
    with warnings.catch_warnings(), _pixel_limit(max_pixels):
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageRefused("decompression bomb", str(error)) from None
        except UnidentifiedImageError:
            raise ImageRefused("not an image") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as error:
            raise ImageRefused("corrupt", str(error)) from None
    if min(image.size) < 1:
        raise ImageRefused("empty", f"{image.width}x{image.height} pixels")
    return image


def declared_pixels(data: bytes) -> int | None:
    """The pixel count an image's header declares, read without decoding; None when it is not an image
    Pillow knows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.width * image.height
        except Image.DecompressionBombError as error:  # Pillow's message is the one place that names the size
            found = re.search(r"\((\d+) pixels\)", str(error))
            return int(found.group(1)) if found else 2 * DEFAULT_MAX_PIXELS + 1
        except Exception:  # Pillow raises many kinds for bytes it cannot identify; each means "not an image"
            return None


def open_image_file(path: str | os.PathLike, label: str = "", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The decoded image at ``path``; anything wrong is a one-line UserError naming ``label`` (a flag) and path."""
    path = Path(path)
    name = f"{label} {path}" if label else str(path)
    if not path.is_file():
        raise UserError(f"{name} does not exist")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UserError(f"{name} is {size} bytes; an image file may be at most {MAX_FILE_BYTES} bytes")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{name} cannot be read ({error.strerror})") from None
    try:
        return open_image(data, max_pixels)
    except ImageRefused as refused:
        allowed = f"; at most {max_pixels} pixels are accepted" if refused.reason == "decompression bomb" else ""
        raise UserError(f"{name} is not a readable image ({' '.join(str(refused).split())[:200]}){allowed}") from None
