"""Open untrusted image files safely (:mod:`infra.image_files`) and bring every mode to plain RGB or greyscale on white.

Opening is where real-world collections go wrong: huge declared sizes (decompression bombs), truncated
downloads, files that are not images at all, and modes a model cannot take (CMYK, palettes, alpha,
16-bit). Each failure becomes a :class:`SkippedImage` with a short reason that the stage counts.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from infra.image_files import DEFAULT_MAX_PIXELS, ImageRefused, open_image  # noqa: F401  (re-exported)

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


# The guarded open lives in infra so that every stage (scraping, evaluation) shares it; these names stay.
SkippedImage = ImageRefused


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
    if has_transparency(image):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        flat.alpha_composite(rgba)
        image = flat
    return image.convert("L" if grayscale else "RGB")


def has_transparency(image: Image.Image) -> bool:
    return image.mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in image.info


def is_flat(image: Image.Image, tolerance: int) -> bool:
    """Every channel within ``tolerance`` levels of one value: an image that draws nothing."""
    extrema = image.getextrema()
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    return all(high - low <= tolerance for low, high in bands)


def flatten_visibly(image: Image.Image, grayscale: bool, tolerance: int) -> tuple[Image.Image, bool]:
    """(to_rgb_or_grey on white, False); or (on black, True) for a mark that vanishes on white: logos made for
    dark backgrounds are drawn in white on transparency, and brand kits ship them beside the coloured ones."""
    on_white = to_rgb_or_grey(image, grayscale)
    if has_transparency(image) and is_flat(on_white, tolerance):
        on_black = to_rgb_or_grey(image, grayscale, background=BLACK)
        if not is_flat(on_black, tolerance):
            return on_black, True
    return on_white, False


def _wide_grey_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    if image.mode in _SIXTEEN_BIT_MODES or values.max(initial=0) > 255:
        values = values / 257.0  # 16-bit range 0..65535 onto 0..255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
