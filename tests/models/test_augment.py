"""Differentiable augmentation against independent numpy references, eager and compiled, on the active backend."""
from __future__ import annotations

import subprocess
import sys

import jsonschema
import keras
import numpy as np
import pytest
from keras import ops

from models import augment
from models.config.augment_schema import AUGMENT_SCHEMA, TRANSFORMS
from tests.models.helpers import PROJECT_ROOT

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, size=(3, 8, 8, 3)).astype(np.float32)


def numpy(tensor) -> np.ndarray:
    return ops.convert_to_numpy(tensor)


def compiled(function):
    """The function as the trainer runs it: under jax.jit or tf.function."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    import tensorflow as tf

    return tf.function(function)


def input_gradients(function, images: np.ndarray) -> np.ndarray:
    """d sum(function(images)) / d images on the active backend."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda x: ops.sum(function(x)))(images))
    import tensorflow as tf

    images = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = ops.sum(function(images))
    return tape.gradient(total, images).numpy()


def uniform_for(index: int, choices: int) -> float:
    """The U(0, 1) number that picks the index-th of ``choices`` equally likely whole numbers."""
    return (index + 0.5) / choices


def shifted(image: np.ndarray, dx: int, dy: int, fill: float) -> np.ndarray:
    height, width = image.shape[:2]
    result = np.full_like(image, fill)
    for y in range(height):
        for x in range(width):
            if 0 <= y - dy < height and 0 <= x - dx < width:
                result[y, x] = image[y - dy, x - dx]
    return result


def test_uniforms_per_image_counts_an_apply_number_and_the_parameters_of_each_transform():
    assert augment.uniforms_per_image([]) == 0
    assert augment.uniforms_per_image(["color"]) == 4
    assert augment.uniforms_per_image(["translation"]) == 3
    assert augment.uniforms_per_image(["cutout"]) == 3
    assert augment.uniforms_per_image(["flip"]) == 2
    assert augment.uniforms_per_image(TRANSFORMS) == 12
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        augment.uniforms_per_image(["rotate"])


@pytest.mark.parametrize("policy", [[], ["color"], ["translation", "cutout"], list(TRANSFORMS)])
def test_probability_zero_is_exactly_the_identity(policy):
    uniforms = RNG.uniform(size=(3, augment.uniforms_per_image(policy))).astype(np.float32)
    uniforms[:1] = 0.0  # the smallest draw is still not below a probability of 0
    result = numpy(augment.augment(IMAGES, uniforms, 0.0, policy, {}))
    np.testing.assert_array_equal(result, IMAGES)


@pytest.mark.parametrize("dx, dy", [(0, 0), (2, -1), (-2, 2), (1, 0)])
def test_translation_shifts_by_whole_pixels_and_fills_with_the_midpoint(dx, dy):
    limit = 2  # round(0.25 * 8): shifts -2..2, five choices per axis
    uniforms = np.array([[0.0, uniform_for(dx + limit, 5), uniform_for(dy + limit, 5)]], dtype=np.float32)
    result = numpy(augment.augment(IMAGES[:1], uniforms, 1.0, ["translation"], {"translation_ratio": 0.25}))
    np.testing.assert_array_equal(result[0], shifted(IMAGES[0], dx, dy, 0.0))


def test_translation_reaches_both_extremes_of_the_shift_range():
    uniforms = np.array([[0.0, 0.0, 0.9999], [0.0, 0.9999, 0.0]], dtype=np.float32)
    result = numpy(augment.augment(IMAGES[:2], uniforms, 1.0, ["translation"], {}))  # default ratio 0.125: s = 1
    np.testing.assert_array_equal(result[0], shifted(IMAGES[0], -1, 1, 0.0))
    np.testing.assert_array_equal(result[1], shifted(IMAGES[1], 1, -1, 0.0))


def test_flip_mirrors_left_to_right_exactly_the_images_whose_side_number_is_below_one_half():
    uniforms = np.array([[0.0, 0.2], [0.0, 0.7], [0.9, 0.2]], dtype=np.float32)  # mirrored, kept, not applied
    result = numpy(augment.augment(IMAGES, uniforms, 0.5, ["flip"], {}))
    np.testing.assert_array_equal(result[0], IMAGES[0, :, ::-1])
    np.testing.assert_array_equal(result[1], IMAGES[1])
    np.testing.assert_array_equal(result[2], IMAGES[2])


def test_flip_at_probability_one_mirrors_about_half_of_a_large_batch():
    images = np.repeat(IMAGES[:1], 400, axis=0)
    uniforms = np.random.default_rng(3).uniform(size=(400, 2)).astype(np.float32)
    result = numpy(augment.augment(images, uniforms, 1.0, ["flip"], {}))
    mirrored = np.all(result == IMAGES[0, :, ::-1], axis=(1, 2, 3))
    assert np.all(mirrored | np.all(result == IMAGES[0], axis=(1, 2, 3)))
    assert 170 <= mirrored.sum() <= 230


def cut(image: np.ndarray, rows: range, columns: range, fill: float) -> np.ndarray:
    result = image.copy()
    for y in rows:
        for x in columns:
            if 0 <= y < image.shape[0] and 0 <= x < image.shape[1]:
                result[y, x] = fill
    return result


@pytest.mark.parametrize("size, ratio, side, centre_x, centre_y", [
    (8, 0.5, 4, 4, 3),   # even side: centres 0..8, the square covers centre - 2 .. centre + 1
    (8, 0.5, 4, 0, 8),   # overlapping the left and bottom borders
    (7, 3 / 7, 3, 6, 1),  # odd side: centres 0..6, the square covers centre - 1 .. centre + 1
])
def test_cutout_fills_a_square_of_the_expected_side_at_the_expected_place(size, ratio, side, centre_x, centre_y):
    image = RNG.uniform(-1, 1, size=(1, size, size, 2)).astype(np.float32)
    centres = size + 1 - side % 2
    uniforms = np.array([[0.3, uniform_for(centre_x, centres), uniform_for(centre_y, centres)]], dtype=np.float32)
    result = numpy(augment.augment(image, uniforms, 0.5, ["cutout"], {"cutout_ratio": ratio}))
    rows = range(centre_y - side // 2, centre_y - side // 2 + side)
    columns = range(centre_x - side // 2, centre_x - side // 2 + side)
    np.testing.assert_array_equal(result[0], cut(image[0], rows, columns, 0.0))


def color_reference(images, brightness, saturation, contrast, value_range=(-1.0, 1.0)):
    width = value_range[1] - value_range[0]
    images = images + (brightness - 0.5) * width / 2
    channel_mean = images.mean(axis=3, keepdims=True)
    images = (images - channel_mean) * (2 * saturation) + channel_mean
    image_mean = images.mean(axis=(1, 2, 3), keepdims=True)
    return (images - image_mean) * (contrast + 0.5) + image_mean


def color(images, brightness, saturation, contrast, value_range=(-1.0, 1.0)):
    uniforms = np.array([[0.0, brightness, saturation, contrast]] * len(images), dtype=np.float32)
    return numpy(augment.augment(images, uniforms, 1.0, ["color"], {}, value_range))


def test_color_brightness_shifts_the_mean_by_a_quarter_of_the_range_width_per_half_unit():
    result = color(IMAGES, 0.75, 0.5, 0.5)
    assert result.shape == IMAGES.shape
    np.testing.assert_allclose(result, IMAGES + 0.25, atol=1e-6)
    np.testing.assert_allclose(color(IMAGES, 0.0, 0.5, 0.5, (0.0, 1.0)), IMAGES - 0.25, atol=1e-6)


def test_color_saturation_scales_each_pixels_spread_over_channels():
    grey = color(IMAGES, 0.5, 0.0, 0.5)
    np.testing.assert_allclose(grey, np.repeat(IMAGES.mean(axis=3, keepdims=True), 3, axis=3), atol=1e-6)
    halved = color(IMAGES, 0.5, 0.25, 0.5)
    spread = IMAGES - IMAGES.mean(axis=3, keepdims=True)
    np.testing.assert_allclose(halved - halved.mean(axis=3, keepdims=True), spread / 2, atol=1e-6)


def test_color_saturation_leaves_a_single_channel_alone():
    single = IMAGES[..., :1]  # saturation 0.9 would scale any spread by 1.8; contrast 0.5 keeps it up to rounding
    np.testing.assert_allclose(color(single, 0.5, 0.9, 0.5), single, atol=1e-6)


def test_color_contrast_scales_the_spread_around_the_image_mean():
    result = color(IMAGES, 0.5, 0.5, 0.0)
    np.testing.assert_allclose(result.mean(axis=(1, 2, 3)), IMAGES.mean(axis=(1, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(result.std(axis=(1, 2, 3)), IMAGES.std(axis=(1, 2, 3)) / 2, rtol=1e-5)


def test_color_matches_the_reference_for_each_images_own_parameters():
    parameters = RNG.uniform(size=(3, 3)).astype(np.float32)
    uniforms = np.concatenate([np.zeros((3, 1), np.float32), parameters], axis=1)
    result = numpy(augment.augment(IMAGES, uniforms, 1.0, ["color"], {}))
    expected = color_reference(IMAGES, *(parameters[:, i].reshape(-1, 1, 1, 1) for i in range(3)))
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_probability_half_transforms_exactly_the_images_whose_apply_number_is_below_it():
    images = RNG.uniform(-1, 1, size=(200, 4, 4, 1)).astype(np.float32)
    uniforms = RNG.uniform(size=(200, 4)).astype(np.float32)
    uniforms[:, 1] = 0.9  # a brightness offset of +0.4: every transformed image changes
    result = numpy(augment.augment(images, uniforms, 0.5, ["color"], {}))
    changed = np.any(result != images, axis=(1, 2, 3))
    np.testing.assert_array_equal(changed, uniforms[:, 0] < 0.5)
    assert 70 <= changed.sum() <= 130


def test_the_same_uniforms_give_the_same_images_and_others_differ():
    uniforms = RNG.uniform(size=(3, augment.uniforms_per_image(TRANSFORMS))).astype(np.float32)
    first = numpy(augment.augment(IMAGES, uniforms, 0.8, TRANSFORMS, {}))
    np.testing.assert_array_equal(first, numpy(augment.augment(IMAGES, uniforms.copy(), 0.8, TRANSFORMS, {})))
    other = numpy(augment.augment(IMAGES, RNG.uniform(size=(3, augment.uniforms_per_image(TRANSFORMS))).astype(np.float32), 0.8, TRANSFORMS, {}))
    assert np.abs(first - other).max() > 0.01


def test_compiled_with_a_traced_probability_matches_eager():
    uniforms = RNG.uniform(size=(3, augment.uniforms_per_image(TRANSFORMS))).astype(np.float32)
    options = {"translation_ratio": 0.25, "cutout_ratio": 0.3}
    run = compiled(lambda images, u, p: augment.augment(images, u, p, TRANSFORMS, options))
    for probability in (0.0, 0.6, 1.0):
        np.testing.assert_allclose(numpy(run(IMAGES, uniforms, np.float32(probability))),
                                   numpy(augment.augment(IMAGES, uniforms, probability, TRANSFORMS, options)),
                                   atol=1e-6)
    np.testing.assert_array_equal(numpy(run(IMAGES, uniforms, np.float32(0.0))), IMAGES)


def test_gradients_reach_the_images_through_every_transform():
    uniforms = RNG.uniform(size=(3, augment.uniforms_per_image(TRANSFORMS))).astype(np.float32)
    weights = RNG.normal(size=IMAGES.shape).astype(np.float32)
    gradients = input_gradients(lambda x: augment.augment(x, uniforms, 1.0, TRANSFORMS, {}) * weights, IMAGES)
    assert gradients.shape == IMAGES.shape
    assert np.all(np.isfinite(gradients))
    assert all(np.abs(gradient).max() > 1e-3 for gradient in gradients)


def test_gradient_is_one_exactly_where_a_pixel_survives_translation_and_cutout():
    image = np.arange(64, dtype=np.float32).reshape(1, 8, 8, 1) / 64
    dx, dy, centre_x, centre_y = 1, -2, 2, 6
    uniforms = np.array([[0.0, uniform_for(dx + 2, 5), uniform_for(dy + 2, 5),
                          0.0, uniform_for(centre_x, 9), uniform_for(centre_y, 9)]], dtype=np.float32)
    options = {"translation_ratio": 0.25, "cutout_ratio": 0.5}
    gradients = input_gradients(lambda x: augment.augment(x, uniforms, 1.0, ["translation", "cutout"], options),
                                image)
    # An input pixel's gradient is 1 iff it lands inside the image and outside the cut-out square.
    landed = shifted(np.ones((8, 8, 1), np.float32), dx, dy, 0.0)
    survived = cut(landed, range(centre_y - 2, centre_y + 2), range(centre_x - 2, centre_x + 2), 0.0)
    expected = shifted(survived, -dx, -dy, 0.0)
    np.testing.assert_array_equal(gradients[0], expected)
    assert 0 < expected.sum() < 64


def test_a_zero_to_one_value_range_fills_with_one_half():
    image = np.zeros((1, 8, 8, 1), dtype=np.float32)
    uniforms = np.array([[0.0, 0.9999, 0.5, 0.0, uniform_for(8, 9), uniform_for(0, 9)]], dtype=np.float32)
    options = {"translation_ratio": 0.25, "cutout_ratio": 0.5}
    result = numpy(augment.augment(image, uniforms, 1.0, ["translation", "cutout"], options, (0.0, 1.0)))[0, ..., 0]
    expected = np.zeros((8, 8), np.float32)
    expected[:, :2] = 0.5  # shifted 2 pixels right
    expected[:2, 6:] = 0.5  # the square centred at column 8, row 0 keeps its lower-left quarter
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("probability, sign_mean, expected", [
    (0.5, 0.9, 0.5 + 64 / 100_000),
    (0.5, 0.1, 0.5 - 64 / 100_000),
    (0.5, 0.6, 0.5),
    (0.9999, 1.0, 1.0),
    (0.0001, -1.0, 0.0),
], ids=["up", "down", "at-target", "capped-at-1", "floored-at-0"])
def test_adjust_probability_follows_the_sign_of_the_overfitting_measure(probability, sign_mean, expected):
    options = {"target": 0.6, "adjust_kimg": 100}
    result = float(numpy(augment.adjust_probability(probability, sign_mean, 64, options)))
    assert result == pytest.approx(expected, abs=1e-7)
    assert 0.0 <= result <= 1.0


def test_adjust_probability_works_on_traced_values():
    run = compiled(lambda p, scores: augment.adjust_probability(p, augment.sign_mean(scores), 1000, {}))
    scores = np.array([[2.0], [0.5], [-1.0], [3.0]], dtype=np.float32)  # r_t = 0.5, below the default 0.6
    assert float(numpy(run(np.float32(0.3), scores))) == pytest.approx(0.29, abs=1e-6)


def test_schema_defaults_validate_and_bad_values_are_rejected():
    validator = jsonschema.Draft202012Validator(AUGMENT_SCHEMA)
    assert AUGMENT_SCHEMA["default"] == {}
    for key, spec in AUGMENT_SCHEMA["properties"].items():
        assert "default" in spec and len(spec["description"]) > 40, key
        assert validator.is_valid({key: spec["default"]}), key
    assert validator.is_valid({"policy": list(TRANSFORMS), "adaptive": True, "probability": 0.0})
    for bad in ({"policy": ["rotate"]}, {"policy": ["color", "color"]}, {"probability": 1.5},
                {"adjust_kimg": 0}, {"translation_ratio": 0.6}, {"colour": True}):
        assert not validator.is_valid(bad), bad


def test_the_schema_loads_without_keras():
    script = "import sys, models.config.augment_schema; assert 'keras' not in sys.modules, 'keras imported'"
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
