"""The formulas on tiny random features, checked against direct definitions."""
import numpy as np
import pytest
import scipy.linalg

from evaluation import metrics
from evaluation.metrics import METRICS, is_better, parse_metrics
from infra.errors import UserError

rng = np.random.default_rng(7)


def scipy_fid(a, b):
    """The textbook formula with scipy's sqrtm, as the reference pipeline computed it."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


@pytest.mark.parametrize("count,dims", [(200, 6), (5, 12)])  # more samples than dimensions, and fewer
def test_fid_equals_the_sqrtm_formula(count, dims):
    a = rng.normal(size=(count, dims))
    b = rng.normal(1.0, 2.0, size=(count + 3, dims)) @ rng.normal(size=(dims, dims))
    assert metrics.fid(a, b) == pytest.approx(scipy_fid(a, b), rel=1e-6)


def test_fid_of_a_shifted_copy_is_the_squared_shift_and_of_itself_zero(reference):
    features = reference["feats_logos"]
    shift = np.zeros(features.shape[1])
    shift[:3] = [1.0, 2.0, 2.0]
    assert metrics.fid(features, features + shift) == pytest.approx(9.0, abs=1e-6)
    assert abs(metrics.fid(features, features)) < 1e-6
    stats = metrics.GaussianStats.of(np.random.default_rng(1).normal(size=(3000, 8)))
    assert abs(metrics.frechet_distance(stats, stats)) < 1e-9  # the eigen-factor path (n > d)


def naive_kid(x, y):
    """Unbiased MMD² with the cubic kernel, written out pair by pair."""
    d = x.shape[1]

    def k(u, v):
        return (u @ v / d + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_estimate_is_the_unbiased_mmd2():
    x, y = rng.normal(size=(9, 4)), rng.normal(0.5, 1.0, size=(7, 4))
    assert metrics.kid_estimate(x, y) == pytest.approx(naive_kid(x, y), rel=1e-9)


def test_kid_subsets_are_at_most_half_the_smaller_set():
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    _, std = metrics.kid(x, y, subsets=10)
    assert std > 0  # equal sets of 40: subsets of 20, so they differ
    with pytest.raises(UserError, match="at least 4 images"):
        metrics.kid(x[:3], y)


def test_kid_separates_distributions_and_varies_over_subsets():
    x, same, other = (rng.normal(loc, 1.0, size=(300, 16)) for loc in (0.0, 0.0, 0.7))
    same_mean, same_std = metrics.kid(x, same, subsets=20, subset_size=100)
    other_mean, other_std = metrics.kid(x, other, subsets=20, subset_size=100)
    assert same_std > 0 and other_std > 0
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert other_mean > 10 * max(abs(same_mean), same_std)
    assert metrics.kid(x, other, subsets=20, subset_size=100) == (other_mean, other_std)  # seeded


def test_mmd_uses_the_median_bandwidth_and_ranks_sets():
    real = rng.integers(0, 128, size=(40, 6, 6, 1), dtype=np.uint8)
    close = rng.integers(0, 128, size=(40, 6, 6, 1), dtype=np.uint8)
    far = rng.integers(128, 256, size=(40, 6, 6, 1), dtype=np.uint8)
    vectors = metrics.pixel_vectors(real)
    pairwise = [np.linalg.norm(vectors[i] - vectors[j]) for i in range(40) for j in range(i + 1, 40)]
    bandwidth = metrics.rbf_bandwidth(vectors)
    assert bandwidth == pytest.approx(np.median(pairwise), rel=1e-6)
    near_value = metrics.mmd(vectors, metrics.pixel_vectors(close), bandwidth)
    far_value = metrics.mmd(vectors, metrics.pixel_vectors(far), bandwidth)
    assert abs(near_value) < 0.05 < far_value
    assert len(metrics.pixel_vectors(np.zeros((300, 2, 2, 1), np.uint8))) == metrics.MMD_SAMPLES


def test_mmd_refuses_different_image_sizes():
    with pytest.raises(UserError, match="same image size"):
        metrics.mmd(np.zeros((4, 10)), np.zeros((4, 12)), 1.0)


def test_is_better_follows_each_metrics_direction():
    assert METRICS["fid"] == "lower" and METRICS["class_accuracy"] == "higher"
    assert is_better("fid", 10.0, None) and is_better("fid", 10.0, 12.0) and not is_better("fid", 12.0, 10.0)
    assert is_better("class_accuracy", 0.9, 0.8) and not is_better("class_accuracy", 0.7, 0.8)
    assert not is_better("kid", float("nan"), 0.1)
    with pytest.raises(UserError, match="choose from fid, kid, mmd, class_accuracy"):
        is_better("inception_score", 1.0, None)


def test_parse_metrics_checks_names():
    assert parse_metrics("fid, kid,fid") == ["fid", "kid"]
    with pytest.raises(UserError, match="unknown metric is"):
        parse_metrics("fid,is")
