"""Pixels in and out of the networks: uint8 images <-> the generator's output range, grids, PNG files."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image

from infra.atomic import atomic_write

OUTPUT_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}  # uint8 0..255 maps onto these


def to_uint8(images: np.ndarray, output_activation: str) -> np.ndarray:
    low, high = OUTPUT_RANGES[output_activation]
    scaled = (np.asarray(images, dtype=np.float32) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images row by row into one image, with a white gap between tiles."""
    count, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
                   255, dtype=np.uint8)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str | Path, image: np.ndarray) -> Path:
    with atomic_write(path) as handle:
        handle.write(png_bytes(image))
    return Path(path)
