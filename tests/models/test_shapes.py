"""The shapes generator: primitives from an MLP, rendered anti-aliased into the mask a two-colour palette paints."""
from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from keras import ops

from infra.errors import UserError
from models import train
from models.networks.generator import build_generator
from models.networks.shapes import CENTRE_RANGE, MIN_HALF_SIZE, MIN_MARK_SHARE, PARAMETERS, ShapeRenderer
from tests.models.helpers import make_dataset, run_without_the_project, tiny_config, write_config

SIZE = 56
PIXELS_PER_UNIT = SIZE / 2  # the canvas spans [-1, 1]
MODES = {"off": (8.0, 0.0, 0.0), "add": (0.0, 8.0, 0.0), "carve": (0.0, 0.0, 8.0)}


def primitive(centre=(0.0, 0.0), half=(0.5, 0.5), angle=0.0, round_=True, band=None, mode="add") -> list[float]:
    """Raw renderer inputs for a primitive given in canvas units (band: the ring's width as a fraction of the
    shorter half-size; None: filled)."""
    def logit(p):
        return math.log(p / (1 - p))

    sizes = [logit((h - MIN_HALF_SIZE) / (1 - MIN_HALF_SIZE)) for h in half]
    values = [math.atanh(centre[0] / CENTRE_RANGE), math.atanh(centre[1] / CENTRE_RANGE), *sizes,
              math.cos(angle), math.sin(angle), 20.0 if round_ else -20.0,
              20.0 if band is None else logit(band / 2), *MODES[mode]]
    assert len(values) == len(PARAMETERS)
    return values


def mark(*primitives, size=SIZE) -> np.ndarray:
    """(H, W) share of the mark in each pixel (the palette's softmax of the renderer's log-weights)."""
    raw = ops.convert_to_tensor(np.array([primitives], dtype="float32"))
    log_weights = ops.convert_to_numpy(ShapeRenderer(size, size)(raw))[0]
    return np.exp(log_weights[..., 1]) / np.exp(log_weights).sum(axis=-1)


def at(image: np.ndarray, x: float, y: float) -> float:
    """The pixel whose centre is nearest the canvas point (x, y)."""
    column, row = (round((value + 1) * PIXELS_PER_UNIT - 0.5) for value in (x, y))
    return float(image[row, column])


def test_a_filled_circle_covers_its_area_with_crisp_anti_aliased_edges():
    image = mark(primitive(half=(0.5, 0.5)))
    radius_px = 0.5 * PIXELS_PER_UNIT
    assert image.sum() == pytest.approx(math.pi * radius_px**2, rel=0.01)
    assert at(image, 0, 0) > 0.999 and at(image, 0.9, 0.9) < 0.001
    partial = np.count_nonzero((image > 0.1) & (image < 0.9))
    assert partial < 2.5 * 2 * math.pi * radius_px  # from 10% to 90% within about two pixels


def test_a_box_has_its_area_and_a_quarter_turn_transposes_it():
    box = mark(primitive(half=(0.5, 0.25), round_=False))
    assert box.sum() == pytest.approx((2 * 0.5 * PIXELS_PER_UNIT) * (2 * 0.25 * PIXELS_PER_UNIT), rel=0.01)
    assert at(box, 0.4, 0.15) > 0.99 and at(box, 0.15, 0.4) < 0.01  # wide, not tall
    turned = mark(primitive(half=(0.5, 0.25), angle=math.pi / 2, round_=False))
    np.testing.assert_allclose(turned, box.T, atol=1e-3)


def test_a_thin_band_draws_a_ring_and_a_carving_part_cuts_a_hole_whatever_the_order():
    ring = mark(primitive(half=(0.6, 0.6), band=0.4))  # a band from radius 0.36 to 0.6
    assert at(ring, 0, 0) < 0.01 and at(ring, 0.48, 0) > 0.99 and at(ring, 0.2, 0) < 0.01
    square, hole = primitive(half=(0.6, 0.6), round_=False), primitive(half=(0.2, 0.2), mode="carve")
    carved = mark(square, hole)
    assert at(carved, 0, 0) < 0.01 and at(carved, 0.4, 0.4) > 0.99 and at(carved, 0.8, 0.8) < 0.01
    np.testing.assert_allclose(mark(hole, square), carved, atol=1e-6)


def test_a_part_that_is_off_draws_nothing():
    circle = primitive(centre=(-0.3, 0.2), half=(0.3, 0.3))
    np.testing.assert_allclose(mark(circle, primitive(half=(0.9, 0.9), mode="off")), mark(circle), atol=1e-6)
    # (A scene whose parts are all off is floored: tests/models/test_background_auto.py.)


def test_a_part_pushed_off_the_canvas_stays_whole_on_it():
    """Centres saturate at CENTRE_RANGE: however far the raw value goes, a small circle stays whole on the canvas
    (a part outside would have no pixels, so no gradient to bring it back)."""
    far = primitive(half=(0.1, 0.1))
    far[0] = far[1] = 50.0  # tanh saturates: the centre sits at (CENTRE_RANGE, CENTRE_RANGE)
    drawn = mark(far)
    # A disc's area blurred by a logistic edge of scale 0.5 px: pi (r^2 + pi^2/3 x 0.5^2).
    area = math.pi * ((0.1 * PIXELS_PER_UNIT) ** 2 + math.pi ** 2 / 3 * 0.25)
    assert abs(drawn.sum() - area) < 0.02 * area
    rows, columns = np.nonzero(drawn > 0.5)
    assert abs(columns.mean() - (SIZE - 1) / 2 - CENTRE_RANGE * PIXELS_PER_UNIT) < 1.0
    assert abs(rows.mean() - (SIZE - 1) / 2 - CENTRE_RANGE * PIXELS_PER_UNIT) < 1.0


def test_the_parts_get_gradients_through_the_edges_and_the_chosen_mode():
    """A loss that wants the mark further right moves the circle right; the mode's softmax gets a gradient
    although the forward pass takes the argmax."""
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient is taken with TensorFlow's tape; the JAX run trains a shapes GAN below")
    raw = tf.Variable(np.array([[primitive(half=(0.3, 0.3))]], dtype="float32"))
    columns = tf.reshape(tf.range(SIZE, dtype=tf.float32), (1, 1, SIZE))
    with tf.GradientTape() as tape:
        log_weights = ShapeRenderer(SIZE, SIZE)(raw)
        share = tf.nn.softmax(log_weights, axis=-1)[..., 1]
        loss = -tf.reduce_sum(share * columns)
    gradient = tape.gradient(loss, raw).numpy()[0, 0]
    named = dict(zip(PARAMETERS, gradient))
    assert named["centre_x"] < 0 and abs(named["centre_y"]) < 1e-3 * abs(named["centre_x"])
    assert named["add"] != 0 and np.isfinite(gradient).all()


def test_the_fused_renderer_matches_the_op_by_op_drawing_in_values_and_gradients():
    """On TensorFlow the renderer runs XLA-compiled (fused) inside an uncompiled CPU step; that must change
    nothing but the speed."""
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("JAX's jitted step fuses the renderer itself; fused() returns it unchanged there")
    rng = np.random.default_rng(3)
    raw = tf.Variable(rng.normal(0.0, 1.5, (4, 6, len(PARAMETERS))).astype("float32"))
    renderer = ShapeRenderer(24, 32)
    results = []
    for draw in (renderer, renderer.draw_op_by_op, renderer.draw_floored_op_by_op):
        with tf.GradientTape() as tape:
            share = tf.nn.softmax(draw(raw), axis=-1)[..., 1]  # of the mark in each pixel
            loss = tf.reduce_sum(share * tf.range(32, dtype=tf.float32))
        results.append((share.numpy(), tape.gradient(loss, raw).numpy()))
    (fused_share, fused_gradient), (plain_share, plain_gradient), (floor_share, floor_gradient) = results
    # The images whose parts leave (almost) no mark are drawn with the renderer's floor, the others without it.
    floored = plain_share.mean(axis=(1, 2)) < MIN_MARK_SHARE
    assert 0 < floored.sum() < len(floored)
    plain_share = np.where(floored[:, None, None], floor_share, plain_share)
    plain_gradient = np.where(floored[:, None, None], floor_gradient, plain_gradient)
    assert fused_share.shape == (4, 24, 32) and 0.05 < plain_share.mean() < 0.95
    assert np.abs(plain_gradient).max() > 1e-3
    np.testing.assert_allclose(fused_share, plain_share, atol=1e-4)
    np.testing.assert_allclose(fused_gradient, plain_gradient, rtol=1e-3, atol=1e-3 * np.abs(plain_gradient).max())


def test_the_generator_draws_varied_two_colour_marks_that_start_apart():
    generator = build_generator({"choice": "dcgan", "architecture": "shapes", "palette": 2, "shape_count": 6},
                                (SIZE, SIZE, 3), 8, None)
    z = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    images = ops.convert_to_numpy(generator(z, training=True))  # batch statistics, as in training
    assert images.shape == (4, SIZE, SIZE, 3) and np.all(np.abs(images) <= 1)
    assert np.abs(images[0] - images[1]).mean() > 0.05  # the latent vector changes the drawing
    layout = np.asarray(generator.get_layer("shape_parameters").bias).reshape(6, len(PARAMETERS))
    centres = CENTRE_RANGE * np.tanh(layout[:, :2])
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(6, 1)]
    assert distances.min() > 0.1


@pytest.mark.parametrize("role, options, message", [
    ("discriminator", {"choice": "dcgan", "architecture": "shapes"},
     "discriminator.architecture: 'shapes' draws images and is for generators only; allowed"),
    ("generator", {"choice": "dcgan", "architecture": "shapes"},
     "generator.palette: None with architecture 'shapes'; the shapes generator draws a mark on a background"),
    ("generator", {"choice": "dcgan", "architecture": "shapes", "palette": 3}, "generator.palette: 3 with"),
    ("generator", {"choice": "dcgan", "architecture": "shapes", "palette": 2, "palette_scale": 4},
     "generator.palette_scale: 4 does not divide the 54x54 px images; use 1 or a scale that divides both"),
    ("generator", {"choice": "dcgan", "architecture": "shapes", "palette": 2, "skip_excitation": True},
     "generator.skip_excitation"),
    ("generator", {"choice": "dcgan", "architecture": "shapes", "palette": 2, "shape_count": 0},
     "generator.shape_count: 0 is less than the minimum of 1"),
])
def test_bad_shapes_options_are_one_line_errors(role, options, message):
    from models.networks.discriminator import build_discriminator

    with pytest.raises(UserError) as error:  # 54 px: a size that 4 does not divide
        if role == "generator":
            build_generator(options, (54, 54, 3), 8, None)
        else:
            build_discriminator(options, (54, 54, 3), None)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_shapes_gan_trains_and_its_generator_loads_once_the_renderer_is_imported(tmp_path):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), tensorboard=False)
    config["generator"].update(architecture="shapes", palette=2, palette_background="#ffffff", shape_count=4,
                               widths=[16])
    path = write_config(tmp_path / "c.json", config)
    assert train.main(["--config", str(path), "--steps", "3", "--name", "s", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    assert json.loads((tmp_path / "s" / "config.json").read_text())["generator"]["architecture"] == "shapes"
    loaded = keras.saving.load_model(tmp_path / "s" / "generator.keras")
    images = ops.convert_to_numpy(loaded(np.zeros((2, 8), "float32")))
    assert images.shape == (2, 16, 16, 3) and np.isfinite(images).all()
    assert np.abs(images).max() <= 1 and np.isclose(images.max(), 1.0, atol=1e-3)  # the white background
    # Without the project the renderer is unknown, and Keras says which class it could not find.
    script = "import keras; keras.saving.load_model('s/generator.keras')"
    result = run_without_the_project(script, tmp_path)
    assert result.returncode != 0 and "ShapeRenderer" in result.stderr


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function traces: the TensorFlow backend")
def test_batches_of_many_sizes_share_one_trace_of_the_fused_renderer():
    # Sampling class by class (models.evaluate) gives a batch of every size; a trace per size warned and cost time.
    renderer = ShapeRenderer(SIZE, SIZE)
    for count in (1, 2, 3, 5, 8):
        raw = np.array([[primitive(half=(0.2 + 0.05 * index, 0.3))] for index in range(count)], dtype="float32")
        drawn = ops.convert_to_numpy(renderer(ops.convert_to_tensor(raw)))
        assert drawn.shape == (count, SIZE, SIZE, 2)
    assert renderer._render.experimental_get_tracing_count() <= 2
