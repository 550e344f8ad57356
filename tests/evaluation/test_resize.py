import numpy as np
import pytest
import tensorflow as tf

from evaluation.inception import INPUT_TOP, LegacyResizeAndScale, legacy_resize_matrix


# TF computes the sample position in float32, which for downscaling moves it by ~1e-5 px (~0.01 grey level).
@pytest.mark.parametrize("size,atol", [(28, 1e-3), (64, 1e-3), (1, 1e-3), (300, 2e-2)])
def test_resize_matrix_is_tf1_legacy_bilinear(size, atol):
    """Compare with TF1's own resize_bilinear (align_corners=False, no half-pixel centres)."""
    image = np.random.default_rng(size).uniform(0, 255, (1, size, 5, 1)).astype(np.float32)
    expected = tf.compat.v1.image.resize_bilinear(image, [299, 5], align_corners=False, half_pixel_centers=False)
    ours = np.einsum("ih,nhwc->niwc", legacy_resize_matrix(size), image)
    np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-5, atol=atol)


def test_resize_matrix_follows_the_readme_formula():
    matrix = legacy_resize_matrix(28)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)
    source = 150 * 28 / 299  # 14.046...: blends rows 14 and 15
    assert matrix[150, 14] == pytest.approx(1 - (source - 14), rel=1e-5)
    assert matrix[150, 15] == pytest.approx(source - 14, rel=1e-5)
    assert matrix[298, 27] == pytest.approx(1.0)  # floor+1 clamped to the last row


def test_layer_resizes_repeats_grey_and_scales_to_the_network_range():
    grey = np.zeros((2, 28, 28, 1), np.float32)
    grey[1] = 255.0
    out = np.asarray(LegacyResizeAndScale(28, 28, 1)(grey))
    assert out.shape == (2, 299, 299, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], -1.0)
    np.testing.assert_allclose(out[1], INPUT_TOP, rtol=1e-6)

    rgb = np.random.default_rng(0).uniform(0, 255, (1, 64, 40, 3)).astype(np.float32)
    resized = tf.compat.v1.image.resize_bilinear(rgb, [299, 299], align_corners=False, half_pixel_centers=False)
    expected = np.clip(resized.numpy() / 255 * (INPUT_TOP + 1) - 1, -1, INPUT_TOP)
    np.testing.assert_allclose(np.asarray(LegacyResizeAndScale(64, 40, 3)(rgb)), expected, atol=1e-5)
