"""Loss values against the formulas, computed independently with numpy."""
from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from models import losses

REAL = np.array([[2.0], [-1.0], [0.5]], dtype=np.float32)
FAKE = np.array([[-3.0], [0.25], [1.5]], dtype=np.float32)


def value(tensor) -> float:
    return float(ops.convert_to_numpy(tensor))


def log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def test_bce_with_one_sided_label_smoothing():
    smoothing = 0.1
    target = 1 - smoothing
    real_term = -(target * log_sigmoid(REAL) + (1 - target) * log_sigmoid(-REAL)).mean()
    fake_term = -log_sigmoid(-FAKE).mean()  # fake targets stay exactly 0
    assert value(losses.discriminator_loss("bce", REAL, FAKE, smoothing)) == pytest.approx(real_term + fake_term,
                                                                                          rel=1e-5)


def test_bce_generator_loss_is_non_saturating():
    assert value(losses.generator_loss("bce", FAKE)) == pytest.approx(-log_sigmoid(FAKE).mean(), rel=1e-5)


@pytest.mark.parametrize("name, d_expected, g_expected", [
    ("wasserstein", FAKE.mean() - REAL.mean(), -FAKE.mean()),
    ("hinge", np.maximum(0, 1 - REAL).mean() + np.maximum(0, 1 + FAKE).mean(), -FAKE.mean()),
    ("lsgan", 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * (FAKE ** 2).mean(), 0.5 * ((FAKE - 1) ** 2).mean()),
])
def test_other_losses(name, d_expected, g_expected):
    assert value(losses.discriminator_loss(name, REAL, FAKE)) == pytest.approx(d_expected, rel=1e-5)
    assert value(losses.generator_loss(name, FAKE)) == pytest.approx(g_expected, rel=1e-5)


def test_gradient_penalty_takes_one_norm_per_sample_over_all_image_dims():
    rng = np.random.default_rng(0)
    gradients = rng.normal(size=(4, 3, 5, 2)).astype(np.float32)
    norms = np.sqrt((gradients ** 2).reshape(4, -1).sum(axis=1))
    expected = ((norms - 1) ** 2).mean()
    assert value(losses.gradient_penalty(gradients)) == pytest.approx(expected, rel=1e-5)
    whole_batch_norm = np.sqrt((gradients ** 2).sum())  # the original scripts' mistake gives another value
    assert abs(expected - (whole_batch_norm - 1) ** 2) > 1.0


def test_gradient_penalty_is_zero_for_unit_norm_gradients():
    gradients = np.zeros((3, 4, 4, 1), dtype=np.float32)
    gradients[:, 0, 0, 0] = 1.0
    assert value(losses.gradient_penalty(gradients)) == pytest.approx(0.0, abs=1e-6)


def test_interpolate_mixes_each_sample_with_its_own_weight():
    real = np.ones((2, 2, 2, 1), dtype=np.float32)
    fake = -np.ones((2, 2, 2, 1), dtype=np.float32)
    weights = np.array([0.25, 1.0], dtype=np.float32).reshape(2, 1, 1, 1)
    mixed = ops.convert_to_numpy(losses.interpolate(real, fake, weights))
    np.testing.assert_allclose(mixed[0], -0.5)
    np.testing.assert_allclose(mixed[1], 1.0)


def test_clip_weights():
    clipped = losses.clip_weights([np.array([-1.0, 0.005, 2.0], dtype=np.float32)], 0.01)
    np.testing.assert_allclose(ops.convert_to_numpy(clipped[0]), [-0.01, 0.005, 0.01])


def test_top_k_keeps_the_scores_of_the_images_the_discriminator_finds_most_real():
    scores = np.array([[0.3], [-2.0], [1.5], [0.9]], dtype=np.float32)
    kept = ops.convert_to_numpy(losses.top_k_scores(ops.convert_to_tensor(scores), 2))
    assert kept.shape == (2, 1) and sorted(kept.ravel().tolist()) == pytest.approx([0.9, 1.5])
    top_two = np.array([1.5, 0.9])
    assert value(losses.generator_loss("bce", losses.top_k_scores(scores, 2))) == pytest.approx(
        -log_sigmoid(top_two).mean(), rel=1e-5)
    assert value(losses.generator_loss("hinge", losses.top_k_scores(scores, 4))) == pytest.approx(-scores.mean())

