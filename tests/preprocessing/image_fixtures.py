"""Awkward input images, made by the tests: every mode and failure the clean step must handle."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

RED = (220, 20, 30)


def logo(size: int = 64, colour=RED, background=(255, 255, 255, 0), mode: str = "RGBA") -> Image.Image:
    """A filled circle with a bar through it, on ``background`` (transparent by default)."""
    image = Image.new(mode, (size, size), background if mode == "RGBA" else background[:3])
    draw = ImageDraw.Draw(image)
    draw.ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=colour)
    draw.rectangle((size // 8, size // 2 - 2, 7 * size // 8, size // 2 + 2), fill=colour)
    return image


def png_with_declared_size(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims ``width``×``height``: a decompression bomb's signature."""
    import io

    buffer = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


def write_awkward_folder(folder: Path) -> dict[str, str]:
    """Write one file per awkward case; return the expected outcome: "kept" or the skip reason."""
    folder.mkdir(parents=True, exist_ok=True)
    logo().save(folder / "rgba_logo.png")
    cmyk = Image.new("CMYK", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(cmyk).rectangle((16, 16, 48, 48), fill=(255, 0, 0, 0))  # cyan square on white
    cmyk.save(folder / "cmyk.jpg", quality=95)
    palette = Image.new("P", (48, 48), 0)
    palette.putpalette([0, 0, 0, 30, 60, 200] + [0] * 762)
    ImageDraw.Draw(palette).rectangle((20, 4, 28, 44), fill=1)  # a bar: unlike the CMYK square
    palette.save(folder / "palette.png", transparency=0)  # index 0 (black) is transparent
    gradient = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(gradient).save(folder / "grey16.png")
    grey_alpha = logo(48).convert("LA")
    grey_alpha.save(folder / "grey_alpha.png")
    Image.new("RGB", (1, 1), (0, 0, 0)).save(folder / "one_pixel.png")
    Image.new("RGB", (10000, 10), (0, 0, 0)).save(folder / "strip.png")
    whole = (folder / "rgba_logo.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "bomb.png").write_bytes(png_with_declared_size(20000, 20000))
    (folder / "not_really.png").write_text("<html>404 not found</html>")
    return {
        "rgba_logo.png": "kept",
        "cmyk.jpg": "kept",
        "palette.png": "kept",
        "grey16.png": "kept",
        "grey_alpha.png": "kept",
        "one_pixel.png": "too small",
        "strip.png": "extreme aspect",
        "truncated.png": "corrupt",
        "bomb.png": "decompression bomb",
        "not_really.png": "not an image",
    }
