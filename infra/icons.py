"""Render single-colour SVG icons to square RGB images, and list the icon sets that ship as packages.

Shared by the collection stage (``scraping.rasterize``) and preprocessing (``preprocessing.simple_icons``),
so neither reaches into the other.

cairosvg runs in its default safe mode: no external files or URLs are fetched and XML entities are not
expanded, so an untrusted SVG cannot read local files or reach the network.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Iterator

import cairosvg
import numpy as np
from PIL import Image

WHITE = (255, 255, 255)
_SVG_OPEN_TAG = re.compile(r"<svg\b", re.IGNORECASE)


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


def render_svg(
    svg: str,
    size: int,
    fill: str | None = None,
    background: tuple[int, int, int] | None = WHITE,
    margin: float = 0.0,
) -> Image.Image:
    """Render ``svg`` centred on a ``size``×``size`` canvas, aspect ratio kept.

    ``margin`` is the fraction of the canvas left empty on each side. With ``background=None`` the result
    is RGBA on transparency; otherwise RGB with transparency flattened onto the background.
    """
    if fill is not None:
        svg = with_fill(svg, fill)
    inner = max(1, round(size * (1 - 2 * margin)))
    # Render the longer side to `inner` pixels; cairosvg keeps the aspect ratio when given one dimension.
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
    flattened = Image.new("RGBA", (size, size), background + (255,))
    flattened.alpha_composite(canvas)
    return flattened.convert("RGB")


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
