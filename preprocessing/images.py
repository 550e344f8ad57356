"""Open untrusted image files safely and bring every mode to plain RGB or greyscale on white.

Opening is where real-world collections go wrong: huge declared sizes (decompression bombs), truncated
downloads, files that are not images at all, and modes a model cannot take (CMYK, palettes, alpha,
16-bit). Each failure becomes a :class:`SkippedImage` with a short reason that the stage counts.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

WHITE = (255, 255, 255)
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own warning limit (a 9,459 x 9,459 image)
ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class SkippedImage(Exception):
    """An input file that cannot become a dataset image; ``reason`` is one of a few short labels."""

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
            raise SkippedImage("decompression bomb", str(error)) from None
        except UnidentifiedImageError:
            raise SkippedImage("not an image") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as error:
            raise SkippedImage("corrupt", str(error)) from None
    return image


def to_rgb_or_grey(image: Image.Image, grayscale: bool = False, background=WHITE) -> Image.Image:
    """RGB (or L with ``grayscale``) with any transparency flattened onto ``background``.

    EXIF rotation is applied so photos stand upright; 16-bit and 32-bit grey are scaled to 8 bits
    (Pillow's own conversion would clip them instead).
    """
    if image.getexif().get(ORIENTATION_TAG, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        image = _wide_grey_to_l(image)
    if image.mode == "1":
        image = image.convert("L")
    if image.mode in ("LA", "La", "PA", "RGBa") or "transparency" in image.info or image.mode == "RGBA":
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        flat.alpha_composite(rgba)
        image = flat
    return image.convert("L" if grayscale else "RGB")


def _wide_grey_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    if image.mode in _SIXTEEN_BIT_MODES or values.max(initial=0) > 255:
        values = values / 257.0  # 16-bit range 0..65535 onto 0..255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
