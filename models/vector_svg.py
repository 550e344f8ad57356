"""Scenes of the vector generator as standalone SVG documents: the same background, parts, colours and painter's
order that :class:`models.networks.vector.VectorRenderer` draws, so any SVG renderer shows the sample at any size.

The canvas spans [-1, 1] along the longer side (the SVG's viewBox), y pointing down as in the images. Boxes
become rounded-rectangle paths (a ring is the outer outline and the inner one, filled even-odd), closed paths
keep their cubic Bézier segments (even-odd), strokes are Bézier curves with round caps. Parts that are off are
left out; a part that paints palette entry 0 paints the background's colour, as it does in the renderer (with
``carving`` "all" after every other part), and a part that mixes entries (colour_choice "soft") is filled with
the mix.
"""
from __future__ import annotations

import math

import numpy as np

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def hex_colour(values: np.ndarray, value_range: tuple) -> str:
    """'#rrggbb' for a colour in the generator's output range (a grey for one channel)."""
    low, high = value_range
    unit = np.clip((np.asarray(values, dtype="float64") - low) / (high - low), 0.0, 1.0)
    if unit.size == 1:
        unit = np.repeat(unit.reshape(1), 3)
    return "#" + "".join(f"{int(round(channel * 255)):02x}" for channel in unit[:3])


def scene_svg(scene: dict, index: int, layout, value_range: tuple, height: int, width: int,
              pixels: int | None = None) -> str:
    """The ``index``-th image of a decoded scene batch (:func:`models.networks.vector.decode`, as NumPy arrays)
    as an SVG document of ``height`` x ``width`` units (or the longer side ``pixels``, same aspect)."""
    longer = max(height, width)
    view_height, view_width = 2.0 * height / longer, 2.0 * width / longer
    scale = (pixels or longer) / longer
    colours = scene["colours"][index]
    lines = [f'<svg xmlns="{SVG_NAMESPACE}" width="{_number(width * scale)}" height="{_number(height * scale)}" '
             f'viewBox="{_number(-view_width / 2)} {_number(-view_height / 2)} {_number(view_width)} '
             f'{_number(view_height)}">',
             f'<rect x="{_number(-view_width / 2)}" y="{_number(-view_height / 2)}" width="{_number(view_width)}" '
             f'height="{_number(view_height)}" fill="{hex_colour(colours[0], value_range)}"/>']
    seen: dict[str, int] = {}
    parts = []  # (part, kind, its index among its kind) in painter's order
    for part, kind in enumerate(layout.parts):
        seen[kind] = seen.get(kind, -1) + 1
        parts.append((part, kind, seen[kind]))
    if layout.carving == "all":  # the parts that paint the background go last, over every other part
        parts.sort(key=lambda item: int(np.argmax(scene["choices"][index, item[0]]) == 1))
    for part, kind, which in parts:
        choice = scene["choices"][index, part]
        if np.argmax(choice) == 0:  # off
            continue
        fill = hex_colour(choice[1:] @ colours, value_range)  # the chosen entry, or the mix a soft choice paints
        if kind == "box":
            lines.append(_box(scene["box"], index, which, fill))
        elif kind == "path":
            lines.append(f'<path d="{_closed_path(scene["path"]["points"][index, which])}" fill="{fill}" '
                         'fill-rule="evenodd"/>')
        else:
            half_width = float(scene["stroke"]["half_width"][index, which])
            lines.append(f'<path d="{_open_path(scene["stroke"]["points"][index, which])}" fill="none" '
                         f'stroke="{fill}" stroke-width="{_number(2 * half_width)}" stroke-linecap="round" '
                         'stroke-linejoin="round"/>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return f"{float(value):.5g}"


def _point(point) -> str:
    return f"{_number(point[0])} {_number(point[1])}"


def _closed_path(points: np.ndarray) -> str:
    """3S anchors and control points -> 'M a0 C c c a1 ... Z'."""
    segments = len(points) // 3
    commands = [f"M {_point(points[0])}"]
    for index in range(segments):
        end = points[(3 * index + 3) % len(points)]
        commands.append(f"C {_point(points[3 * index + 1])} {_point(points[3 * index + 2])} {_point(end)}")
    return " ".join(commands) + " Z"


def _open_path(points: np.ndarray) -> str:
    """3S + 1 points -> 'M p0 C p1 p2 p3 C ...'."""
    commands = [f"M {_point(points[0])}"]
    for index in range(0, len(points) - 1, 3):
        commands.append(f"C {_point(points[index + 1])} {_point(points[index + 2])} {_point(points[index + 3])}")
    return " ".join(commands)


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def _box(box: dict, index: int, which: int, fill: str) -> str:
    """A rounded box (or ring) as the renderer's signed distance defines it: corners of radius sigmoid(roundness)
    x the shorter half-size; a band of 2 x sigmoid(thickness) x the shorter half-size inside the edge, whose inner
    outline is the box shrunk by the band (its corners' radius shrinks with it, down to sharp)."""
    half_width, half_height = (float(value) for value in box["half_size"][index, which])
    shorter = min(half_width, half_height)
    radius = _sigmoid(float(box["roundness"][index, which])) * shorter
    band = 2.0 * _sigmoid(float(box["thickness"][index, which])) * shorter
    outline = _rounded_rectangle(half_width, half_height, radius)
    if band < shorter:
        outline += " " + _rounded_rectangle(half_width - band, half_height - band, max(radius - band, 0.0))
    centre_x, centre_y = (float(value) for value in box["centre"][index, which])
    cos, sin = (float(value) for value in box["direction"][index, which])
    angle = math.degrees(math.atan2(sin, cos))
    return (f'<path d="{outline}" fill="{fill}" fill-rule="evenodd" '
            f'transform="translate({_number(centre_x)} {_number(centre_y)}) rotate({_number(angle)})"/>')


def _rounded_rectangle(half_width: float, half_height: float, radius: float) -> str:
    """A closed path of the rectangle centred on the origin, with circular corners of ``radius``."""
    w, h, r = half_width, half_height, min(radius, half_width, half_height)
    if r <= 1e-6:
        return (f"M {_number(-w)} {_number(-h)} H {_number(w)} V {_number(h)} H {_number(-w)} Z")
    arc = f"A {_number(r)} {_number(r)} 0 0 1"
    return (f"M {_number(-w + r)} {_number(-h)} H {_number(w - r)} {arc} {_number(w)} {_number(-h + r)} "
            f"V {_number(h - r)} {arc} {_number(w - r)} {_number(h)} H {_number(-w + r)} "
            f"{arc} {_number(-w)} {_number(h - r)} V {_number(-h + r)} {arc} {_number(-w + r)} {_number(-h)} Z")
