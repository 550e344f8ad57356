"""The layered vector generator: each image is a scene of a background, a small palette and K parts painted in
order, rendered anti-aliased by a differentiable renderer, and the same scene is a standalone SVG.

Parts come in three kinds, listed in painter's order by the generator's ``vector_parts``:

- ``box``: a box with rounded corners (a circle or stadium at the limit), rotated, filled or hollowed into a
  ring or frame (the shapes generator's primitive);
- ``path``: a closed path of ``path_segments`` cubic Bézier segments, filled by the even-odd rule, so a path
  that crosses itself has holes; it starts as a circle;
- ``stroke``: an open path of ``stroke_segments`` cubic Bézier segments drawn with a width and round caps, for
  letter-like marks; it starts as a straight line.

Each part either is off or paints one palette entry, chosen outright in the forward pass with the softmax's
gradient (straight-through): a translucent part would be a colour no logo has, and an exact entry is what lets
``models.generate --colours`` repaint a sample. Entry 0 is the background, so a part that paints it carves
through everything beneath (with ``carving`` "all", through every part, as the shapes generator carves: the
carving parts are painted last). With ``colour_choice`` "soft" a part that is on paints a softmax mix of the
entries instead, a colour between them that the SVG names exactly. The renderer samples each Bézier segment
at ``curve_samples`` points and measures each pixel's distance to the resulting polyline (DiffVG's approach, in
closed form per edge); coverage is a logistic of the signed distance, about a pixel wide, so every parameter
has a gradient along its edges.

:class:`VectorRenderer` is registered with Keras, so a saved vector generator loads with
``keras.saving.load_model`` once this module has been imported (``models.generate`` does that). Its input, the
flat *scene* (palette colours, then each part's raw parameters), is what :mod:`models.vector_svg` writes out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from infra.errors import UserError
from models.backends import fused
from models.networks.blocks import dense, drop, hidden, spectral
from models.networks.shapes import CENTRE_RANGE, MIN_HALF_SIZE, rounded_box_distance

PART_KINDS = ("box", "path", "stroke")
BOX_PARAMETERS = ("centre_x", "centre_y", "half_width", "half_height", "direction_x", "direction_y", "roundness",
                  "thickness")
OFFSET_SCALE = 0.25  # control points move by this many part sizes per unit of raw output
STROKE_HALF_WIDTHS = (0.03, 0.25)  # canvas units: about 0.8 to 7 px at 56 px
EDGE_PX = 0.3  # the logistic's default scale in pixels: about the slope of an SVG renderer's box-filter coverage


@dataclass(frozen=True)
class SceneLayout:
    """Where each value of a flat scene vector sits: the palette's colours, then per part in painter's order
    its choice logits (off, entry 0 .. entry palette-1), then each kind's geometry; and how the choice logits
    are read (``colour_choice``, see :func:`decode`) and what a part painting the background cuts (``carving``:
    "beneath", the parts under it in painter's order; "all", every part, the carving parts being painted last)."""
    parts: tuple
    palette: int
    channels: int
    path_segments: int
    stroke_segments: int
    colour_choice: str = "hard"
    carving: str = "beneath"

    @property
    def box_size(self) -> int:
        return len(BOX_PARAMETERS)

    @property
    def path_size(self) -> int:  # centre (2), size (1), 3 control points per segment
        return 3 + 6 * self.path_segments

    @property
    def stroke_size(self) -> int:  # centre (2), size (1), 3 per segment and the end point, half-width (1)
        return 3 + 2 * (3 * self.stroke_segments + 1) + 1

    def count(self, kind: str) -> int:
        return sum(1 for part in self.parts if part == kind)

    @property
    def blocks(self) -> list[tuple[str, int]]:
        """(name, length) of each block of the flat scene, in order."""
        return [("colours", self.palette * self.channels), ("choices", len(self.parts) * (self.palette + 1)),
                ("box", self.count("box") * self.box_size), ("path", self.count("path") * self.path_size),
                ("stroke", self.count("stroke") * self.stroke_size)]

    @property
    def size(self) -> int:
        return sum(length for _, length in self.blocks)

    def outline_offsets(self) -> np.ndarray:
        """Positions, within the geometry (the scene less its colours), of the paths' and strokes' control-point
        offsets from their base shapes."""
        start = len(self.parts) * (self.palette + 1) + self.count("box") * self.box_size
        positions = []
        for kind, size, offsets in (("path", self.path_size, 6 * self.path_segments),
                                    ("stroke", self.stroke_size, 2 * (3 * self.stroke_segments + 1))):
            for _ in range(self.count(kind)):
                positions.extend(range(start + 3, start + 3 + offsets))  # after centre (2) and size (1)
                start += size
        return np.array(positions, dtype="int64")

    def split(self, scene) -> dict:
        """The flat (B, size) scene as named blocks: colours (B, P, C), choices (B, K, P+1) and each kind's
        (B, count, parameters)."""
        out, start = {}, 0
        shapes = {"colours": (self.palette, self.channels), "choices": (len(self.parts), self.palette + 1),
                  "box": (self.count("box"), self.box_size), "path": (self.count("path"), self.path_size),
                  "stroke": (self.count("stroke"), self.stroke_size)}
        for name, length in self.blocks:
            # The batch size given, not -1: a kind with no parts is an empty block, whose -1 JAX cannot infer.
            out[name] = ops.reshape(scene[:, start:start + length], (ops.shape(scene)[0], *shapes[name]))
            start += length
        return out


def generator_body(x, colours, opts: dict, image_shape: tuple, noise=None):
    """Dense layers, then each part's raw parameters; with the palette's colours (B, P, C) they make the flat
    scene, rendered to (B, H, W, C) images in the output range. ``noise``: the latent vector (B, latent_dim),
    whose slices are the parts' own latents with ``part_latent_dim``."""
    height, width, channels = image_shape
    layout = layout_from_options(opts, channels)
    for units in opts["widths"]:
        x = hidden(dense(units, opts)(x), opts)
    x = drop(x, opts)
    geometry_size = layout.size - layout.palette * channels
    # Unit-variance outputs per latent draw (as in the shapes generator): the parts start as varied as the data.
    parameters = layers.Dense(geometry_size, name="vector_parameters",
                              kernel_initializer=keras.initializers.VarianceScaling(1.0, "fan_in"),
                              bias_initializer=keras.initializers.Constant(starting_layout(layout)))
    raw = spectral(parameters, opts)(x)
    if opts["outline_start_spread"] != 1.0:
        # The offsets' starting weights scaled alone: below 1 the outlines start near circles and lines (at 1 a
        # path's twelve control points each move by their own noise, so early samples are spiky, self-crossing
        # blobs), above 1 they start more varied than the layout. Adam's steps do not depend on the weights'
        # scale, so either way they bend as fast as training asks. Both measured worse than 1 (colour_v10/v11).
        column_scale = np.ones(geometry_size, dtype="float32")
        column_scale[layout.outline_offsets()] = opts["outline_start_spread"]
        parameters.kernel.assign(parameters.kernel * column_scale)
    if opts["part_latent_dim"]:
        raw = layers.Add()([raw, _part_variation(x, noise, layout, opts)])
    scene = layers.Concatenate(name="vector_scene")([layers.Flatten()(colours), raw])
    value_range = (-1.0, 1.0) if opts["output_activation"] == "tanh" else (0.0, 1.0)
    return VectorRenderer(height, width, list(layout.parts), layout.palette, channels, layout.path_segments,
                          layout.stroke_segments, opts["curve_samples"], value_range,
                          outline_scale=opts["palette_scale"], colour_choice=opts["colour_choice"],
                          edge_px=opts["edge_px"], carving=opts["carving"],
                          edge_px_start=opts["edge_px_start"], edge_anneal_kimg=opts["edge_anneal_kimg"],
                          dtype="float32", name="vector_renderer")(scene)


def _part_variation(context, noise, layout: SceneLayout, opts: dict):
    """(B, geometry) added to the parts' raw values: each part's own slice of the latent vector, with the shared
    context, through a head shared by every part of its kind (its choice logits through one head shared by all
    parts). As BlockGAN and GIRAFFE give each object its own latent: a box learns from every box of every sample."""
    size, count = opts["part_latent_dim"], len(layout.parts)
    latent_dim = noise.shape[-1]
    if size * count > latent_dim:
        raise UserError(f"generator.part_latent_dim: {size} for each of {count} parts needs a latent_dim of at least "
                        f"{size * count}, not {latent_dim}; lower part_latent_dim or raise latent_dim")
    column = layers.Reshape((latent_dim, 1))(noise)
    units = max(opts["widths"][-1] // 4, 16)
    trunk = dense(units, opts)

    def head(length):  # outputs of half the spread the shared context's parameters start with, zero on average
        return spectral(layers.Dense(length, kernel_initializer=keras.initializers.VarianceScaling(0.5, "fan_in")),
                        opts)

    choices = head(layout.palette + 1)
    geometry = {kind: head(length) for kind, length in (("box", layout.box_size), ("path", layout.path_size),
                                                        ("stroke", layout.stroke_size))}
    per_kind = {kind: [] for kind in PART_KINDS}
    chosen = []
    for index, kind in enumerate(layout.parts):
        own = layers.Flatten()(layers.Cropping1D((index * size, latent_dim - (index + 1) * size))(column))
        features = layers.Activation("relu")(trunk(layers.Concatenate()([context, own])))
        chosen.append(choices(features))
        per_kind[kind].append(geometry[kind](features))
    return layers.Concatenate()(chosen + per_kind["box"] + per_kind["path"] + per_kind["stroke"])


def layout_from_options(opts: dict, channels: int) -> SceneLayout:
    if opts["carving"] == "all" and opts["colour_choice"] != "hard":
        # A soft choice paints a mix that includes the background's weight: no one part carves.
        raise UserError(f"generator.carving: 'all' goes with colour_choice 'hard', not {opts['colour_choice']!r}; "
                        "use carving 'beneath' or colour_choice 'hard'")
    return SceneLayout(tuple(opts["vector_parts"]), opts["palette"], channels, opts["path_segments"],
                       opts["stroke_segments"], opts["colour_choice"], opts["carving"])


def starting_layout(layout: SceneLayout) -> list[float]:
    """Biases of the geometry block: parts spread on a sunflower spiral within half the canvas, small, on, and
    painting the mark's entries in turn (never the background, which would carve). Identical starting parts
    would get identical gradients and stay together."""
    golden_angle = math.pi * (3.0 - math.sqrt(5.0))
    count = len(layout.parts)
    centres = []
    for index in range(count):
        radius, angle = 0.5 * math.sqrt((index + 0.5) / count), index * golden_angle
        centres.append([math.atanh(radius * math.cos(angle) / CENTRE_RANGE),
                        math.atanh(radius * math.sin(angle) / CENTRE_RANGE)])
    choices = []
    for index in range(count):
        logits = [0.0] * (layout.palette + 1)
        logits[0] = logits[1] = -1.0  # off, background
        logits[2 + index % max(layout.palette - 1, 1) if layout.palette > 1 else 1] = 1.0
        choices += logits
    small = _logit((0.2 - MIN_HALF_SIZE) / (1.0 - MIN_HALF_SIZE))
    kinds = {kind: [] for kind in PART_KINDS}
    for index, kind in enumerate(layout.parts):
        if kind == "box":
            kinds[kind] += [*centres[index], small, small, 1.0, 0.0, 2.0 if index % 2 else -2.0, 3.0]
        elif kind == "path":
            kinds[kind] += [*centres[index], small] + [0.0] * (6 * layout.path_segments)
        else:
            kinds[kind] += [*centres[index], small] + [0.0] * (2 * (3 * layout.stroke_segments + 1)) + [0.0]
    return choices + kinds["box"] + kinds["path"] + kinds["stroke"]


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def bezier_basis(samples: int) -> np.ndarray:
    """(samples, 4): the cubic Bernstein weights at t = 0, 1/samples, ..., (samples-1)/samples."""
    t = np.arange(samples, dtype="float32")[:, None] / samples
    return np.concatenate([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], axis=1)


def circle_points(segments: int) -> np.ndarray:
    """(3 x segments, 2): anchors and control points of the closed cubic path that approximates the unit circle."""
    kappa = 4.0 / 3.0 * math.tan(math.pi / (2 * segments))
    points = []
    for index in range(segments):
        angle, following = 2 * math.pi * index / segments, 2 * math.pi * (index + 1) / segments
        anchor = np.array([math.cos(angle), math.sin(angle)])
        ahead = np.array([math.cos(following), math.sin(following)])
        points += [anchor, anchor + kappa * np.array([-math.sin(angle), math.cos(angle)]),
                   ahead - kappa * np.array([-math.sin(following), math.cos(following)])]
    return np.array(points, dtype="float32")


def line_points(segments: int, angle: float) -> np.ndarray:
    """(3 x segments + 1, 2): the control points of a straight stroke from -1 to 1 at ``angle``."""
    along = np.linspace(-1.0, 1.0, 3 * segments + 1, dtype="float32")
    return np.stack([along * math.cos(angle), along * math.sin(angle)], axis=1).astype("float32")


def stroke_angle(index: int) -> float:
    """The starting direction of the index-th stroke: golden-angle turns, so strokes start in varied directions."""
    return index * math.pi * (3.0 - math.sqrt(5.0))


def decode(scene, layout: SceneLayout) -> dict:
    """The flat (B, size) scene as geometry in canvas units ([-1, 1] along the longer side, y down):

    - ``colours`` (B, P, C) in the output range; ``choices`` (B, K, P+1): off, then the weight of each entry.
      With ``colour_choice`` "hard" one-hot (straight-through); with "soft" the off-or-on choice is still
      outright (a translucent part is no logo's), and an "on" part's weights are the softmax of its entries'
      logits, a mix of the palette;
    - ``box``: centre (B, n, 2), half_size (B, n, 2), direction (B, n, 2) unit, roundness and thickness
      (B, n) raw (see :func:`models.networks.shapes.rounded_box_distance`);
    - ``path``: points (B, n, 3S, 2), anchors and control points of the closed path;
    - ``stroke``: points (B, n, 3S+1, 2) and half_width (B, n)."""
    blocks = layout.split(scene)
    soft = ops.softmax(blocks["choices"], axis=-1)
    hard = ops.one_hot(ops.argmax(soft, axis=-1), layout.palette + 1, dtype="float32")
    choices = soft + ops.stop_gradient(hard - soft)
    if layout.colour_choice == "soft":
        on = 1.0 - choices[..., :1]
        choices = ops.concatenate([1.0 - on, on * ops.softmax(blocks["choices"][..., 1:], axis=-1)], axis=-1)
    out = {"colours": blocks["colours"], "choices": choices}
    span = 1.0 - MIN_HALF_SIZE

    box = blocks["box"]
    norm = ops.sqrt(ops.square(box[..., 4]) + ops.square(box[..., 5]) + 1e-6)
    out["box"] = {"centre": CENTRE_RANGE * ops.tanh(box[..., 0:2]),
                  "half_size": MIN_HALF_SIZE + span * ops.sigmoid(box[..., 2:4]),
                  "direction": ops.stack([box[..., 4] / norm, box[..., 5] / norm], axis=-1),
                  "roundness": box[..., 6], "thickness": box[..., 7]}

    for kind, base in (("path", _path_base(layout)), ("stroke", _stroke_base(layout))):
        raw = blocks[kind]
        centre = ops.expand_dims(CENTRE_RANGE * ops.tanh(raw[..., 0:2]), 2)
        size = ops.expand_dims(ops.expand_dims(MIN_HALF_SIZE + span * ops.sigmoid(raw[..., 2]), -1), -1)
        point_count = base.shape[1]
        offsets = ops.reshape(raw[..., 3:3 + 2 * point_count], (ops.shape(raw)[0], raw.shape[1], point_count, 2))
        out[kind] = {"points": centre + size * (ops.convert_to_tensor(base)[None] + OFFSET_SCALE * offsets)}
    low, high = STROKE_HALF_WIDTHS
    out["stroke"]["half_width"] = low + (high - low) * ops.sigmoid(blocks["stroke"][..., -1])
    return out


def _path_base(layout: SceneLayout) -> np.ndarray:
    """(paths, 3S, 2): every path starts as the unit circle (scaled by its size)."""
    return np.repeat(circle_points(layout.path_segments)[None], layout.count("path"), axis=0)


def _stroke_base(layout: SceneLayout) -> np.ndarray:
    """(strokes, 3S+1, 2): straight lines in varied directions."""
    lines = [line_points(layout.stroke_segments, stroke_angle(index)) for index in range(layout.count("stroke"))]
    return np.array(lines, dtype="float32").reshape(layout.count("stroke"), 3 * layout.stroke_segments + 1, 2)


@keras.saving.register_keras_serializable(package="logogan")
class VectorRenderer(layers.Layer):
    """(B, layout.size) flat scenes -> (B, H, W, C) images in the output range, by painter's order over the
    background (palette entry 0). Any size: :meth:`at_size` gives the same renderer for another canvas.

    With ``outline_scale`` s > 1 the paths' and strokes' signed distances, the renderer's main cost (per pixel,
    part and edge), are measured on a grid s times coarser and enlarged by linear interpolation before coverage:
    a signed distance is linear across a straight edge, so edges stay where they are and as sharp; only where
    the nearest edge changes (corners, the middle of a stroke or of a part thinner than s pixels) does the
    enlarged distance read long, and thin strokes draw a little thinner. Boxes are measured at every pixel."""

    def __init__(self, height: int, width: int, parts: list, palette: int, channels: int, path_segments: int,
                 stroke_segments: int, curve_samples: int, value_range=(-1.0, 1.0), outline_scale: int = 1,
                 colour_choice: str = "hard", edge_px: float = EDGE_PX, carving: str = "beneath",
                 edge_px_start: float | None = None, edge_anneal_kimg: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width, self.curve_samples, self.edge_px = height, width, curve_samples, edge_px
        self.edge_px_start, self.edge_anneal_kimg = edge_px_start, edge_anneal_kimg
        self.value_range, self.outline_scale = tuple(value_range), outline_scale
        self._search_step = 1 if outline_scale > 1 else 2
        self.layout = SceneLayout(tuple(parts), palette, channels, path_segments, stroke_segments, colour_choice,
                                  carving)
        self._render = fused(self.draw_op_by_op)

    def get_config(self):
        layout = self.layout
        return {**super().get_config(), "height": self.height, "width": self.width, "parts": list(layout.parts),
                "palette": layout.palette, "channels": layout.channels, "path_segments": layout.path_segments,
                "stroke_segments": layout.stroke_segments, "curve_samples": self.curve_samples,
                "value_range": list(self.value_range), "outline_scale": self.outline_scale,
                "colour_choice": layout.colour_choice, "edge_px": self.edge_px, "carving": layout.carving,
                "edge_px_start": self.edge_px_start, "edge_anneal_kimg": self.edge_anneal_kimg}

    @property
    def anneals(self) -> bool:
        return self.edge_px_start is not None and self.edge_anneal_kimg > 0

    def build(self, input_shape):
        if self.anneals:
            # The images drawn in training so far (a training call draws one batch: with n_critic 1 a step draws
            # two, for the discriminator's update and the generator's); a weight, so a resumed run goes on from it.
            self.images_drawn = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="float32",
                                                name="images_drawn")
        super().build(input_shape)

    def at_size(self, height: int, width: int) -> "VectorRenderer":
        """The same renderer drawing on a height x width canvas (the scene is resolution-free)."""
        config = {**self.get_config(), "height": height, "width": width, "name": f"vector_renderer_{height}"}
        return VectorRenderer.from_config(config)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, self.layout.channels)

    def call(self, scene, training=False):
        scene = ops.cast(scene, "float32")
        if not (training and self.anneals):
            return self._render(scene, self.edge_px)
        # Annealed edges: soft at first, so each part's parameters have a gradient from pixels far from its edges
        # while the layout is still wrong, reaching edge_px after edge_anneal_kimg thousand drawn images.
        # Inference always draws at edge_px: the samples, the exported model and the SVG are the final drawing.
        limit = 1000.0 * self.edge_anneal_kimg
        progress = ops.minimum(self.images_drawn / limit, 1.0)
        edge_px = self.edge_px_start + (self.edge_px - self.edge_px_start) * progress
        self.images_drawn.assign(ops.minimum(self.images_drawn + ops.cast(ops.shape(scene)[0], "float32"), limit))
        return self._render(scene, edge_px)

    def draw_op_by_op(self, scene, edge_px=None):
        """The rendering as separate ops; call() runs it fused (models.backends.fused), with the same result.
        ``edge_px``: the edges' softness (a float or a 0-d tensor), the renderer's own when None."""
        edge_px = self.edge_px if edge_px is None else edge_px
        layout = self.layout
        pixel = 2.0 / max(self.height, self.width)  # canvas units per pixel
        rows, columns = pixel_centres(self.height, pixel), pixel_centres(self.width, pixel)
        # Parts first, (B, n, H, W): per-part values (B, n, 1, 1) broadcast along rows of pixels, which XLA
        # vectorizes; with the parts last it ran the elementwise work about half as fast.
        grid_y = ops.convert_to_tensor(rows.reshape(1, 1, -1, 1))
        grid_x = ops.convert_to_tensor(columns.reshape(1, 1, 1, -1))
        if self.outline_scale > 1:
            coarse_rows, coarse_columns = (coarse_centres(centres, self.outline_scale * pixel)
                                           for centres in (rows, columns))
            outline_y = ops.convert_to_tensor(coarse_rows.reshape(1, 1, -1, 1))
            outline_x = ops.convert_to_tensor(coarse_columns.reshape(1, 1, 1, -1))
            enlarge_rows = ops.convert_to_tensor(interpolation_matrix(coarse_rows, rows))
            enlarge_columns = ops.convert_to_tensor(interpolation_matrix(coarse_columns, columns))

            def at_pixels(values):  # (B, n, h, w) on the coarse grid -> (B, n, H, W)
                values = ops.einsum("Hh,bnhw->bnHw", enlarge_rows, values)
                return ops.einsum("Ww,bnhw->bnhW", enlarge_columns, values)
        else:
            outline_y, outline_x = grid_y, grid_x

            def at_pixels(values):
                return values
        parts = decode(scene, layout)

        distances = {}  # kind -> (B, n, H, W) signed distance, negative inside
        if layout.count("box"):
            distances["box"] = _box_distance(parts["box"], grid_x, grid_y)
        if layout.count("path"):
            distances["path"] = at_pixels(self._path_distance(parts["path"]["points"], outline_x, outline_y))
        if layout.count("stroke"):
            along = at_pixels(self._stroke_distance(parts["stroke"]["points"], outline_x, outline_y))
            distances["stroke"] = along - _per_part(parts["stroke"]["half_width"])
        # (B, K, H, W) in the kinds' order (boxes, paths, strokes).
        coverage = ops.sigmoid(ops.concatenate([distances[kind] for kind in PART_KINDS if kind in distances], 1)
                               * (-1.0 / (edge_px * pixel)))
        on = 1.0 - parts["choices"][..., 0]  # (B, K), as the choices, in painter's order
        colours = parts["colours"]
        part_colours = ops.einsum("bkp,bpc->bkc", parts["choices"][..., 1:], colours)  # (B, K, C): each one's entry
        # The painter's order as K blends over the background, each taking one part's coverage by a static slice:
        # with the parts first, XLA fuses them into one loop over the pixels, faster than one matmul over the parts.
        image = ops.broadcast_to(_per_part(colours[:, 0]), (ops.shape(coverage)[0], layout.channels,
                                                             self.height, self.width))
        order = _painter_order(layout)
        if layout.carving == "all":
            # The parts that paint the background go last, each over everything: a carving part cuts every part
            # whatever its place, so none has to learn to come after what it cuts.
            carving = parts["choices"][..., 1]
            on = on - carving
        for place, index in enumerate(order):
            alpha = coverage[:, index:index + 1] * ops.reshape(on[:, place], (-1, 1, 1, 1))
            image = image + alpha * (_per_part(part_colours[:, place]) - image)
        if layout.carving == "all":
            for place, index in enumerate(order):
                alpha = coverage[:, index:index + 1] * ops.reshape(carving[:, place], (-1, 1, 1, 1))
                image = image + alpha * (_per_part(colours[:, 0]) - image)
        return ops.transpose(image, (0, 2, 3, 1))

    def _path_distance(self, points, grid_x, grid_y):
        """Signed distance to closed paths: the distance to their flattened outline, negative where the even-odd
        rule puts the pixel inside."""
        segments = self.layout.path_segments
        following = ops.roll(points, -3, axis=2)[:, :, 0:3 * segments:3]  # each segment's end anchor
        controls = ops.reshape(points, (-1, points.shape[1], segments, 3, 2))
        controls = ops.concatenate([controls, ops.expand_dims(following, 3)], axis=3)  # (B, n, S, 4, 2)
        vertices = ops.reshape(ops.einsum("tq,bnsqd->bnstd", bezier_basis(self.curve_samples), controls),
                               (-1, points.shape[1], segments * self.curve_samples, 2))
        start, end = vertices, ops.roll(vertices, -1, axis=2)
        distance = _polyline_distance(start, end, grid_x, grid_y, closed=True, search_step=self._search_step)
        return distance * (1.0 - 2.0 * _inside(start, end, grid_x, grid_y))

    def _stroke_distance(self, points, grid_x, grid_y):
        """Unsigned distance to open paths (their flattened centre lines)."""
        segments = self.layout.stroke_segments
        controls = ops.stack([points[:, :, index:index + 4] for index in range(0, 3 * segments, 3)], axis=2)
        vertices = ops.reshape(ops.einsum("tq,bnsqd->bnstd", bezier_basis(self.curve_samples), controls),
                               (-1, points.shape[1], segments * self.curve_samples, 2))
        vertices = ops.concatenate([vertices, points[:, :, -1:]], axis=2)
        return _polyline_distance(vertices[:, :, :-1], vertices[:, :, 1:], grid_x, grid_y, closed=False,
                                  search_step=self._search_step)


def pixel_centres(count: int, pixel: float) -> np.ndarray:
    """Canvas coordinates of ``count`` pixel centres ``pixel`` apart, centred on 0."""
    return ((np.arange(count, dtype="float32") - (count - 1) / 2.0) * pixel).astype("float32")


def coarse_centres(centres: np.ndarray, spacing: float) -> np.ndarray:
    """Points ``spacing`` apart, centred on 0, that reach to or beyond both ends of ``centres``: a coarse grid
    from which every fine centre is interpolated, none extrapolated."""
    count = int(math.ceil((centres[-1] - centres[0]) / spacing - 1e-6)) + 1
    return pixel_centres(max(count, 2), spacing)


def interpolation_matrix(coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """(len(fine), len(coarse)): the weights that interpolate values on ``coarse`` points linearly at ``fine``."""
    position = np.clip((fine - coarse[0]) / (coarse[1] - coarse[0]), 0.0, len(coarse) - 1.0)
    left = np.minimum(np.floor(position).astype(int), len(coarse) - 2)
    weight = position - left
    matrix = np.zeros((len(fine), len(coarse)), dtype="float32")
    matrix[np.arange(len(fine)), left] = 1.0 - weight
    matrix[np.arange(len(fine)), left + 1] = weight
    return matrix


def _per_part(values):
    """(B, n) -> (B, n, 1, 1): one value per part, broadcast over the pixels."""
    return ops.expand_dims(ops.expand_dims(values, -1), -1)


def _box_distance(box: dict, grid_x, grid_y):
    cos, sin = _per_part(box["direction"][..., 0]), _per_part(box["direction"][..., 1])
    offset_x = grid_x - _per_part(box["centre"][..., 0])
    offset_y = grid_y - _per_part(box["centre"][..., 1])
    local_x, local_y = cos * offset_x + sin * offset_y, cos * offset_y - sin * offset_x
    return rounded_box_distance(local_x, local_y, _per_part(box["half_size"][..., 0]),
                                _per_part(box["half_size"][..., 1]), _per_part(box["roundness"]),
                                _per_part(box["thickness"]))


def _polyline_distance(start, end, grid_x, grid_y, closed: bool, search_step: int = 2):
    """(B, n, H, W): each grid point's distance to the nearest of each part's edges start -> end (B, n, E, 2).

    The nearest edge is searched without a gradient on every ``search_step``-th row and column (at 2, a quarter
    of the point-edge pairs, the renderer's main cost); each point then measures, with the gradient, its
    distance to the edge its search point found and that edge's two neighbours along the outline, and keeps the
    nearest. On a pixel grid a point is at most a pixel from its search point, less than an edge's length, so
    the nearest edge is among them but where two far-apart stretches of outline are equally near, and there
    they are equally near: the distance is the same. A coarser grid (outline_scale) searches at every point:
    its points are further apart than an edge is long."""
    height, width = grid_y.shape[2], grid_x.shape[3]
    found = _nearest_edge(start, end, grid_x[..., ::search_step], grid_y[:, :, ::search_step])
    if search_step > 1:
        found = ops.repeat(ops.repeat(found, search_step, axis=2), search_step, axis=3)[:, :, :height, :width]
    nearest = found  # (B, n, H, W)

    parts, edges = start.shape[1], start.shape[2]
    # Part k's edges start at k x E in each image's list.
    first_edge = ops.reshape(ops.arange(parts, dtype="int32") * edges, (parts, 1, 1))
    flat = [ops.reshape(values, (-1, parts * edges))
            for values in (start[..., 0], start[..., 1], end[..., 0], end[..., 1])]
    distances = []
    for offset in ((-1, 0, 1) if search_step > 1 else (0,)):
        candidate = nearest + offset
        candidate = candidate % edges if closed else ops.clip(candidate, 0, edges - 1)
        index = ops.reshape(candidate + first_edge, (-1, parts * height * width))
        ax, ay, bx, by = (ops.reshape(ops.take_along_axis(values, index, axis=1), (-1, parts, height, width))
                          for values in flat)
        distances.append(_squared_distance_to_segment(grid_x - ax, grid_y - ay, bx - ax, by - ay))
    # Elementwise minimum, not a reduction: XLA may recompute the candidates in another fusion with other
    # rounding, and a reduction's gradient, which looks for the elements equal to the minimum, then finds none.
    if len(distances) == 1:  # searched at this very point: the nearest edge itself
        return ops.sqrt(distances[0] + 1e-10)
    return ops.sqrt(ops.minimum(distances[1], ops.minimum(distances[0], distances[2])) + 1e-10)


def _squared_distance_to_segment(px, py, abx, aby):
    """The squared distance from points p to segments a -> b, given p - a and b - a."""
    along = ops.clip((px * abx + py * aby) / (abx * abx + aby * aby + 1e-12), 0.0, 1.0)
    return ops.square(px - along * abx) + ops.square(py - along * aby)


def _nearest_edge(start, end, grid_x, grid_y):
    """(B, n, h, w) int32: the index of each part's edge (start -> end, (B, n, E, 2)) nearest to each grid point,
    the first of equals, found without a gradient (:func:`_edge_list`). One edge at a time, keeping the nearest so far: elementwise work on (B, n, h, w) that
    XLA fuses, where an argmin over a trailing axis of E edges ran about five times slower."""
    edges = _edge_list(start, end)

    def distance(edge):
        ax, ay, abx, aby = (_per_part(edge[..., value]) for value in range(4))
        return _squared_distance_to_segment(grid_x - ax, grid_y - ay, abx, aby)

    def keep_nearer(index, state):
        nearest, found = state
        squared = distance(edges[index])
        closer = squared < nearest
        return ops.where(closer, squared, nearest), ops.where(closer, ops.cast(index, "float32"), found)

    first = distance(edges[0])
    _, found = _for_each_edge(1, start.shape[2], keep_nearer, (first, ops.zeros_like(first)))
    return ops.cast(found, "int32")


def _inside(start, end, grid_x, grid_y):
    """(B, n, H, W) 1.0 where a ray from the pixel to +x crosses the closed outline an odd number of times (the
    even-odd rule, SVG's fill-rule="evenodd"); no gradient, the distance carries it. One edge at a time, as
    :func:`_nearest_edge`."""
    edges = _edge_list(start, end)

    def add_crossing(index, crossings):
        ax, ay, abx, aby = (_per_part(edges[index][..., value]) for value in range(4))
        straddles = ops.not_equal(ay > grid_y, ay + aby > grid_y)
        crossing_x = ax + (grid_y - ay) * abx / ops.where(straddles, aby, 1.0)
        return crossings + ops.cast(ops.logical_and(straddles, grid_x < crossing_x), "float32")

    shape = (ops.shape(start)[0], start.shape[1], grid_y.shape[2], grid_x.shape[3])
    crossings = _for_each_edge(0, start.shape[2], add_crossing, ops.zeros(shape))
    return crossings - 2.0 * ops.floor(crossings / 2.0)


UNROLLED_EDGES = 32  # up to this many edges a part, the loop over them is unrolled; beyond, a compiled loop


def _edge_list(start, end):
    """(B, n, E, 2) edge ends -> (E, B, n, 4): per edge its start and its vector, without a gradient."""
    return ops.moveaxis(ops.stop_gradient(ops.concatenate([start, end - start], axis=-1)), 2, 0)


def _for_each_edge(first: int, stop: int, body, state):
    """``state = body(index, state)`` for index in [first, stop): unrolled for a few edges (about 8% faster in a
    training step), a compiled loop for many (unrolled, 384 edges took 90 s to compile)."""
    if stop - first <= UNROLLED_EDGES:
        for index in range(first, stop):
            state = body(index, state)
        return state
    return ops.fori_loop(first, stop, body, state)


def _painter_order(layout: SceneLayout) -> np.ndarray:
    """Indices that take the kinds' concatenated coverage (boxes, paths, strokes) to the parts' painter's order."""
    offsets, start = {}, 0
    for kind in PART_KINDS:
        offsets[kind], start = start, start + layout.count(kind)
    seen = {kind: 0 for kind in PART_KINDS}
    order = []
    for kind in layout.parts:
        order.append(offsets[kind] + seen[kind])
        seen[kind] += 1
    return np.array(order, dtype="int32")
