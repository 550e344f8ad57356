"""Trim, square and resize one image, the way logos want it: content centred on its own background.

The background is the median colour of the image's outermost pixels, which for logos is the page or
the flattened transparency; it fills every pixel added by padding, trimming margins or (in augment)
rotation.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops

from preprocessing.images import SkippedImage

FITS = ("pad", "crop")
RESAMPLE = Image.Resampling.LANCZOS  # antialiased downscaling
REDUCING_GAP = 2.0  # shrink big images by whole factors first: much faster, same look


def background_colour(pixels: np.ndarray) -> tuple[int, ...]:
    """Median colour of the border pixels of an (H, W, C) array; one value per channel."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(value) for value in np.median(border, axis=0))


def as_channels(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _fill(colour: tuple[int, ...], bands: int) -> int | tuple[int, ...]:
    """Pillow wants a plain int as the colour of a one-band image."""
    return colour[0] if bands == 1 else colour


def content_box(image: Image.Image, background: tuple[int, ...], tolerance: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels that differ from the background by more than ``tolerance``."""
    bands = len(image.getbands())
    difference = ImageChops.difference(image, Image.new(image.mode, image.size, _fill(background, bands)))
    # Subtracting the tolerance (clipped at 0) leaves non-zero pixels exactly where content is.
    beyond = ImageChops.subtract(difference, Image.new(image.mode, image.size, _fill((tolerance,) * bands, bands)))
    box = beyond.getbbox()
    if box is None:
        raise SkippedImage("blank", "no content differs from the background")
    return box


def square_and_resize(
    image: Image.Image, size: int, fit: str = "pad", trim: bool = False, margin: float = 0.0, tolerance: int = 12
) -> Image.Image:
    """A ``size``×``size`` image of the same mode.

    ``trim`` first cuts uniform background borders and then leaves ``margin`` (a fraction of the side)
    blank around the content. ``fit="pad"`` keeps the whole content and pads the short side with the
    background; ``fit="crop"`` cuts the centre square (the walkthrough's ``ImageOps.fit``).
    """
    pixels = as_channels(image)
    background = background_colour(pixels)
    box = content_box(image, background, tolerance) if trim else (0, 0, image.width, image.height)
    if not trim:
        margin = 0.0
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    if fit == "crop":
        side = min(width, height)
        left, top = left + (width - side) // 2, top + (height - side) // 2
        box, width, height = (left, top, left + side, top + side), side, side
    inner = max(1, round(size * (1 - 2 * margin)))
    scale = inner / max(width, height)
    scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
    content = image.resize(scaled, RESAMPLE, box=box, reducing_gap=REDUCING_GAP)
    canvas = Image.new(image.mode, (size, size), _fill(background, len(image.getbands())))
    canvas.paste(content, ((size - scaled[0]) // 2, (size - scaled[1]) // 2))
    return canvas
