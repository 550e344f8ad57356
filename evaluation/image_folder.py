"""Read a folder of image files (PNG, JPEG, ...) as one uint8 batch, e.g. the output of models.generate."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from infra.errors import UserError
from infra.image_files import open_image_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def image_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


def load_image_folder(folder: str | Path) -> np.ndarray:
    """uint8 (N, H, W, C): grey (C=1) when every file is greyscale, else RGB; all files must share a size."""
    folder = Path(folder)
    files = image_files(folder)
    if not files:
        raise UserError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    images = []
    for path in files:
        with open_image_file(path) as image:
            images.append(image.convert("L") if image.mode in ("L", "1", "I;16") else image.convert("RGB"))
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        raise UserError(f"{folder}: images have different sizes {sorted(sizes)}; all must share one size")
    grey = all(image.mode == "L" for image in images)
    arrays = [np.asarray(image if grey else image.convert("RGB")) for image in images]
    batch = np.stack(arrays)
    return batch[..., None] if grey else batch
