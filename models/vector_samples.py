"""Samples of a vector generator as what they are: scenes that render at any size, repaint with other colours
and write out as SVG. :class:`models.generate.TrainedGenerator` uses this for a generator whose last layer is
:class:`models.networks.vector.VectorRenderer`; every other generator draws pixels and has none of it.
"""
from __future__ import annotations

import numpy as np

from infra.errors import UserError

RENDERER_LAYER = "vector_renderer"
MAX_SIZE = 4096  # pixels on the longer side of one rendered sample


def renderer_of(model):
    """The generator's vector renderer, or None for a generator that draws pixels."""
    from models.networks import vector

    try:
        layer = model.get_layer(RENDERER_LAYER)
    except ValueError:
        return None
    return layer if isinstance(layer, vector.VectorRenderer) else None


def parse_colours(text: str, palette: int, value_range: tuple, channels: int) -> np.ndarray:
    """'#e11d48,#111827' -> (count, channels) colours in the output range. ``palette`` colours replace every
    entry, background first; palette - 1 replace the mark's entries and keep each sample's background."""
    names = [name.strip() for name in text.split(",")]
    allowed = f"give {palette} colours (background first) or {palette - 1} (the mark's, background kept)"
    if "" in names:  # a stray comma would otherwise turn the full palette into the mark's colours, silently
        raise UserError(f"--colours: entry {names.index('') + 1} of {len(names)} is empty; {allowed}, as "
                        "'#rrggbb,#rrggbb,...'")
    rgbs = [_css_colour(name, allowed) for name in names]
    if len(names) not in (palette, palette - 1):
        raise UserError(f"--colours: {len(names)} colour(s) for a palette of {palette}; {allowed}, as "
                        "'#rrggbb,#rrggbb,...'")
    colours = []
    for rgb in rgbs:
        unit = rgb if channels == 3 else np.array([0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]])
        low, high = value_range
        colours.append(low + (high - low) * unit)
    return np.array(colours, dtype="float32")


def _css_colour(name: str, allowed: str) -> np.ndarray:
    """RGB in 0..1 of an opaque CSS colour: '#rrggbb', '#rgb' or a name such as 'navy' (Pillow's table, CSS's
    names). Functional forms hold commas, which separate the entries, and alpha has nothing to paint over."""
    from PIL import ImageColor

    hex_digits = name[1:] if name.startswith("#") else ""
    opaque_hex = len(hex_digits) in (3, 6) and all(c in "0123456789abcdefABCDEF" for c in hex_digits)
    try:
        if (name.startswith("#") and not opaque_hex) or "(" in name:
            raise ValueError(name)  # '#rgba', '#rrggbbaa', 'rgb(...)': Pillow reads them, the palette cannot
        rgb = ImageColor.getrgb(name)
    except ValueError:
        raise UserError(f"--colours: {name!r} is not a colour; use '#rrggbb', '#rgb' or a CSS name "
                        f"(e.g. #e11d48, #fff, navy); {allowed}") from None
    return np.array(rgb[:3], dtype="float64") / 255.0


class VectorSamples:
    """Scenes from a vector generator: ``scenes(inputs)`` (the flat scene per sample), then any of
    ``recolour``, ``render(size)`` and ``svg``."""

    def __init__(self, model, renderer):
        import keras

        self.renderer = renderer
        self.layout = renderer.layout
        self._scenes = keras.Model(model.inputs, renderer.input)

    def scenes(self, inputs) -> np.ndarray:
        from keras import ops

        return ops.convert_to_numpy(ops.cast(self._scenes(inputs, training=False), "float32"))

    def recolour(self, scenes: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """The same scenes painted with ``colours`` (from :func:`parse_colours`): the palette is the first block of
        each scene, so parts keep their entries and only the entries' colours change."""
        scenes = scenes.copy()
        width = self.layout.palette * self.layout.channels
        palette = scenes[:, :width].reshape(len(scenes), self.layout.palette, self.layout.channels)
        palette[:, self.layout.palette - len(colours):] = colours
        scenes[:, :width] = palette.reshape(len(scenes), width)
        return scenes

    def render(self, scenes: np.ndarray, size: int | None = None) -> np.ndarray:
        """Float images in the output range at the trained size, or with the longer side ``size`` pixels."""
        from keras import ops

        renderer = self.renderer
        if size is not None:
            if not 1 <= size <= MAX_SIZE:
                raise UserError(f"--size {size}: allowed 1 to {MAX_SIZE} pixels")
            longer = max(renderer.height, renderer.width)
            renderer = renderer.at_size(max(1, round(renderer.height * size / longer)),
                                        max(1, round(renderer.width * size / longer)))
        chunks = [ops.convert_to_numpy(renderer(scenes[start:start + 64]))
                  for start in range(0, len(scenes), 64)]
        return np.concatenate(chunks)

    def svg(self, scenes: np.ndarray, size: int | None = None) -> list[str]:
        """One standalone SVG document per scene (its width and height the trained size, or ``size``)."""
        from keras import ops

        from models.networks import vector
        from models.vector_svg import scene_svg

        def numpy(value):
            return {key: numpy(item) for key, item in value.items()} if isinstance(value, dict) else \
                ops.convert_to_numpy(value)
        decoded = numpy(vector.decode(scenes, self.layout))
        return [scene_svg(decoded, index, self.layout, self.renderer.value_range, self.renderer.height,
                          self.renderer.width, size) for index in range(len(scenes))]
