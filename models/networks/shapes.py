"""A vector generator for marks made of geometric parts (logos, icons): an MLP gives each image a set of
primitives, boxes with rounded corners (circles and stadiums at the limit) that may be rotated, hollowed into
rings or frames and used to carve holes, and a differentiable renderer turns them into the mask a two-colour
palette paints.

A conv generator must learn, pixel by pixel, that edges are straight or round and that areas are flat; here
that is built in, so the generator's few parameters go into where the parts sit and how they combine. The
renderer anti-aliases each edge over about a pixel (as DiffVG does), so every parameter gets a gradient from the
pixels along its edges.

:class:`ShapeRenderer` is the one layer of the toolkit's networks that is not a built-in Keras layer: it is
registered with Keras, so a saved shapes generator loads with ``keras.saving.load_model`` once this module
has been imported (``models.generate`` does that).
"""
from __future__ import annotations

import math

import keras
from keras import layers, ops

from infra.errors import UserError
from models.backends import fused
from models.networks.blocks import dense, drop, hidden, spectral

# Raw values per primitive, in this order (see ShapeRenderer.draw_op_by_op for what each becomes).
PARAMETERS = ("centre_x", "centre_y", "half_width", "half_height", "direction_x", "direction_y", "roundness",
              "thickness", "off", "add", "carve")
CENTRE_RANGE = 0.8  # centres stay this far from the middle: a part pushed off the canvas would get no gradient
MIN_HALF_SIZE = 0.04  # of the canvas' half-size: about a pixel at 56 px, so no part vanishes without a gradient
MIN_MARK_SHARE = 0.01  # a mark on less of the canvas reads as a blank tile; see ShapeRenderer.call's floor


def generator_body(x, opts: dict, image_shape: tuple, feature_maps):
    """Dense layers, then PARAMETERS per primitive, rendered to (B, H, W, 2) log-weights of the palette's two
    entries: background and mark. With a palette_scale the renderer draws at that fraction of the size (the
    generator enlarges the log-weights bilinearly before the palette's softmax, as for a conv generator): the
    renderer's cost is per pixel and per primitive, and the enlarged edges stay crisp."""
    height, width, _ = image_shape
    scale = opts["palette_scale"]
    if height % scale or width % scale:
        raise UserError(f"generator.palette_scale: {scale} does not divide the {height}x{width} px images; use "
                        "1 or a scale that divides both sides")
    height, width = height // scale, width // scale
    for units in opts["widths"]:
        x = hidden(dense(units, opts)(x), opts)
    x = drop(x, opts)
    count = opts["shape_count"]
    # Unit-variance outputs per latent draw (not init_std's near-constant ones): the primitives start out as
    # varied across images as the data, rather than each learning slowly to depend on the latent vector.
    raw = spectral(layers.Dense(count * len(PARAMETERS), name="shape_parameters",
                                kernel_initializer=keras.initializers.VarianceScaling(1.0, "fan_in"),
                                bias_initializer=keras.initializers.Constant(starting_layout(count))), opts)(x)
    raw = layers.Reshape((count, len(PARAMETERS)))(raw)
    return ShapeRenderer(height, width, dtype="float32", name="shape_renderer")(raw)


def starting_layout(count: int) -> list[float]:
    """Biases that start the primitives apart: centres on a sunflower spiral within half the canvas, small
    filled boxes and circles, adding to the mark more often than not. Identical starting primitives would get
    identical gradients and stay together."""
    golden_angle = math.pi * (3.0 - math.sqrt(5.0))
    biases = []
    for index in range(count):
        radius, angle = 0.5 * math.sqrt((index + 0.5) / count), index * golden_angle
        centre = [math.atanh(radius * math.cos(angle) / CENTRE_RANGE),
                  math.atanh(radius * math.sin(angle) / CENTRE_RANGE)]
        half_size = _logit((0.2 - MIN_HALF_SIZE) / (1.0 - MIN_HALF_SIZE))
        roundness = 2.0 if index % 2 else -2.0
        biases += [*centre, half_size, half_size, 1.0, 0.0, roundness, 3.0, 0.0, 1.0, 0.0]
    return biases


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def rounded_box_distance(local_x, local_y, half_width, half_height, roundness, thickness):
    """The signed distance (negative inside) of a box with rounded corners, in its own frame, hollowed to a band
    along its edge when ``thickness`` is low: the shapes and vector generators' box part.

    Corners have radius sigmoid(roundness) x the shorter half-size, so roundness -> -inf is a box and +inf a
    circle or a stadium. The band is 2 x sigmoid(thickness) x the shorter half-size wide inside the edge: a ring
    or frame, or from sigmoid 0.5 up the filled shape (a wide range of the parameter, as most parts of logos are
    filled). Per-part terms broadcast against the pixel grid."""
    shorter = ops.minimum(half_width, half_height)
    radius = ops.sigmoid(roundness) * shorter
    beyond_x = ops.abs(local_x) - (half_width - radius)
    beyond_y = ops.abs(local_y) - (half_height - radius)
    distance = (ops.sqrt(ops.square(ops.relu(beyond_x)) + ops.square(ops.relu(beyond_y)) + 1e-8)
                + ops.minimum(ops.maximum(beyond_x, beyond_y), 0.0) - radius)
    half_band = ops.sigmoid(thickness) * shorter
    return ops.abs(distance + half_band) - half_band


@keras.saving.register_keras_serializable(package="logogan")
class ShapeRenderer(layers.Layer):
    """(B, K, len(PARAMETERS)) raw primitive parameters -> (B, H, W, 2) log-weights of background and mark.

    The canvas spans [-1, 1] along its longer side. Each primitive's signed distance (negative inside) is a
    rounded box's, hollowed to a band along its edge when ``thickness`` < 1, and anti-aliased over about
    2 x ``edge_px`` pixels into coverage. The mark is the union of the parts that add, less the union of the
    parts that carve: order-free, so no part has to learn to come first."""

    def __init__(self, height: int, width: int, edge_px: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width, self.edge_px = height, width, edge_px
        # About 25 elementwise ops per pixel and part, forward and back: fused, each pass reads and writes the
        # pixels once instead of once per op (docs/speed.md, "Figures quoted from code comments").
        self._render = fused(self.draw_op_by_op)
        self._render_floored = fused(self.draw_floored_op_by_op)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "edge_px": self.edge_px}

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, 2)

    def call(self, raw):
        raw = ops.cast(raw, "float32")
        log_weights = self._render(raw)
        # A floor under the mark: an image whose parts' modes leave (almost) nothing, every part off or carving or
        # the carving parts covering the adding ones, gives no gradient (nothing to move) and so stays blank for
        # good; it is drawn again with the part most inclined to add added and kept from carving. Only batches
        # with such an image pay for the second rendering, and the others train exactly as without the floor.
        empty = ops.mean(ops.exp(log_weights[..., 1]), axis=(1, 2)) < MIN_MARK_SHARE  # (B,)
        return ops.cond(ops.any(empty), lambda: ops.where(ops.reshape(empty, (-1, 1, 1, 1)),
                                                          self._render_floored(raw), log_weights),
                        lambda: log_weights)

    def draw_op_by_op(self, raw):
        """The rendering as separate ops; call() runs it fused (models.backends.fused), with the same result for
        every image its floor leaves alone."""
        return self._draw(raw, floor=False)

    def draw_floored_op_by_op(self, raw):
        """The rendering with the part most inclined to add (the highest softmax weight on "add") added, whatever
        its own mode, and left uncarved."""
        return self._draw(raw, floor=True)

    def _draw(self, raw, floor: bool):
        pixel = 2.0 / max(self.height, self.width)  # canvas units per pixel
        rows = (ops.arange(self.height, dtype="float32") - (self.height - 1) / 2.0) * pixel
        columns = (ops.arange(self.width, dtype="float32") - (self.width - 1) / 2.0) * pixel
        grid_y = ops.reshape(rows, (1, self.height, 1, 1))
        grid_x = ops.reshape(columns, (1, 1, self.width, 1))
        # (B, K) -> (B, 1, 1, K): one value per primitive, broadcast over the pixels.
        values = [ops.expand_dims(ops.expand_dims(raw[:, :, index], 1), 1) for index in range(len(PARAMETERS))]
        p = dict(zip(PARAMETERS, values))
        span = 1.0 - MIN_HALF_SIZE
        half_width = MIN_HALF_SIZE + span * ops.sigmoid(p["half_width"])
        half_height = MIN_HALF_SIZE + span * ops.sigmoid(p["half_height"])
        norm = ops.sqrt(ops.square(p["direction_x"]) + ops.square(p["direction_y"]) + 1e-6)
        cos, sin = p["direction_x"] / norm, p["direction_y"] / norm
        offset_x = grid_x - CENTRE_RANGE * ops.tanh(p["centre_x"])
        offset_y = grid_y - CENTRE_RANGE * ops.tanh(p["centre_y"])
        local_x, local_y = cos * offset_x + sin * offset_y, cos * offset_y - sin * offset_x

        distance = rounded_box_distance(local_x, local_y, half_width, half_height, p["roundness"], p["thickness"])
        coverage = ops.sigmoid(distance * (-1.0 / (self.edge_px * pixel)))

        # Each primitive is off, adds or carves: chosen outright in the forward pass (a translucent part would be
        # a colour no logo has), with the softmax's gradient (straight-through), so a part can change its mode.
        soft = ops.softmax(ops.stack([p["off"], p["add"], p["carve"]], axis=-1), axis=-1)
        chosen = ops.one_hot(ops.argmax(soft, axis=-1), 3, dtype="float32")
        if floor:
            lead = ops.one_hot(ops.argmax(soft[..., 1], axis=-1), soft.shape[-2], dtype="float32")  # (B, 1, 1, K)
            chosen = chosen + ops.expand_dims(lead, -1) * (ops.convert_to_tensor([0.0, 1.0, 0.0]) - chosen)
        modes = soft + ops.stop_gradient(chosen - soft)
        adding = modes[..., 1] * coverage
        if floor:
            kept, adding = ops.sum(lead * adding, axis=-1), adding * (1.0 - lead)
        drawn = 1.0 - ops.prod(1.0 - adding, axis=-1)
        carved = 1.0 - ops.prod(1.0 - modes[..., 2] * coverage, axis=-1)
        mark = drawn * (1.0 - carved)
        if floor:
            mark = mark + kept * (1.0 - mark)  # the lead part on top of what the others leave
        mark = ops.expand_dims(mark, -1)
        return ops.concatenate([ops.log(1.0 - mark + 1e-6), ops.log(mark + 1e-6)], axis=-1)
