"""Generated images as files: one PNG grid, or a zip of single PNGs."""
from __future__ import annotations

import io
import math
import zipfile

import numpy as np
from PIL import Image

GAP = 2  # pixels between tiles
GAP_GREY = 128  # mid-grey: visible both on white logos and on black Fashion-MNIST backgrounds


def grid_columns(n: int) -> int:
    """As square as possible, wider rather than taller."""
    return math.ceil(math.sqrt(n))


def tile(images: np.ndarray) -> np.ndarray:
    """Lay (N, H, W, C) uint8 images out row by row with a grey gap between them (none around them)."""
    n, height, width, channels = images.shape
    columns = grid_columns(n)
    rows = math.ceil(n / columns)
    grid = np.full(
        (rows * height + (rows - 1) * GAP, columns * width + (columns - 1) * GAP, channels), GAP_GREY, np.uint8
    )
    for index, image in enumerate(images):
        top = (index // columns) * (height + GAP)
        left = (index % columns) * (width + GAP)
        grid[top : top + height, left : left + width] = image
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W, 1|3) uint8 as PNG: grey images stay one-channel."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(images: np.ndarray, stem: str) -> bytes:
    """One PNG per image, named ``<stem>-000.png`` upwards, in a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, image in enumerate(images):
            archive.writestr(f"{stem}-{index:03d}.png", png_bytes(image))
    return buffer.getvalue()
