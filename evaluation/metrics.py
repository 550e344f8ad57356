"""The metrics' names and directions, and their formulas on feature vectors or pixels (numpy only; no
network here, so names are checked before Keras loads).

- FID: Fréchet distance between Gaussians fitted to two feature sets.
- KID: unbiased MMD² with the cubic polynomial kernel, averaged over random subsets (Bińkowski et al.
  2018); unbiased, so it suits small sets where FID is biased upwards.
- MMD: unbiased MMD² with an RBF kernel on pixels, as the JSON-config toolkit measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from infra.errors import UserError

# Metric name -> which direction is better.
METRICS: dict[str, str] = {"fid": "lower", "kid": "lower", "mmd": "lower", "class_accuracy": "higher"}


def is_better(metric: str, new: float, old: float | None) -> bool:
    """Whether ``new`` beats ``old`` (None: nothing to beat yet); NaN never wins."""
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if new is None or np.isnan(new):
        return False
    if old is None or np.isnan(old):
        return True
    return new < old if METRICS[metric] == "lower" else new > old


def parse_metrics(text: str | Sequence[str]) -> list[str]:
    """'fid,kid' or ['fid', 'kid'] -> checked list; a one-line UserError names the allowed metrics."""
    names = [name.strip() for name in (text.split(",") if isinstance(text, str) else text) if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise UserError(f"unknown metric {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance (ddof=1) of a feature set, plus a factor L with L Lᵀ = covariance."""

    mean: np.ndarray
    covariance: np.ndarray
    factor: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray, mean: np.ndarray | None = None,
           covariance: np.ndarray | None = None) -> "GaussianStats":
        """From the features; ``mean`` and ``covariance`` may come precomputed (from the cache)."""
        features = np.asarray(features, dtype=np.float64)
        if len(features) < 2:
            raise UserError(f"FID needs at least 2 images per set; got {len(features)}")
        mean = features.mean(axis=0) if mean is None else mean
        covariance = np.cov(features, rowvar=False) if covariance is None else covariance
        if len(features) <= features.shape[1]:
            # Fewer samples than dimensions: the centred samples are an exact factor, no eigensolver needed.
            factor = (features - mean).T / np.sqrt(len(features) - 1)
        else:
            factor = psd_factor(covariance)
        return cls(mean, covariance, factor)


def psd_factor(covariance: np.ndarray) -> np.ndarray:
    """L (d×r) with L Lᵀ = covariance, dropping eigenvalues below numerical resolution.

    Eigenvalues within rounding of zero would add ~sqrt(noise) each to tr sqrtm(S1 S2), so they are
    dropped (the matrix_rank tolerance); that keeps FID(X, X) at zero to rounding.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    tolerance = max(eigenvalues.max(), 0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    keep = eigenvalues > tolerance
    return eigenvectors[:, keep] * np.sqrt(eigenvalues[keep])


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """|mu_a − mu_b|² + tr(S_a + S_b − 2 sqrtm(S_a S_b)).

    tr sqrtm(S_a S_b) equals the sum of singular values of L_aᵀ L_b (the eigenvalues of S_a S_b are the
    squared singular values of that r_a×r_b matrix), which is exact, real and fast; it also makes
    FID(X, X) vanish to rounding, where scipy's sqrtm of a rank-deficient product leaves noise.
    """
    mean_term = float(np.sum((a.mean - b.mean) ** 2))
    cross = np.linalg.svd(a.factor.T @ b.factor, compute_uv=False).sum()
    return mean_term + float(np.trace(a.covariance) + np.trace(b.covariance) - 2.0 * cross)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    return frechet_distance(GaussianStats.of(features_a), GaussianStats.of(features_b))


def _unbiased_mmd2(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD² from kernel matrices: off-diagonal means of K_xx and K_yy, minus twice mean K_xy."""
    m, n = len(k_xx), len(k_yy)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x·y / d + 1)³, the KID kernel."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kid_estimate(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between two feature sets with the KID kernel."""
    return _unbiased_mmd2(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))


KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of :func:`kid_estimate` over random subsets of both sets.

    Subsets hold ``subset_size`` rows (the usual 1,000), but at most half the smaller set: with equal
    sets every subset would otherwise be the whole set and the std would say nothing. The estimate is
    unbiased at any subset size, so this changes only the spread. The seed is fixed, so the same two
    sets always give the same numbers.
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    size = min(subset_size, min(len(real), len(fake)) // 2)
    if size < 2:
        raise UserError(f"KID needs at least 4 images per set; got {len(real)} real and {len(fake)} generated")
    rng = np.random.default_rng(seed)
    values = [kid_estimate(real[rng.choice(len(real), size, replace=False)],
                           fake[rng.choice(len(fake), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


MMD_SAMPLES = 250  # the toolkit compared the first 250 samples of each set


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T, 0.0)


def pixel_vectors(images: np.ndarray, limit: int = MMD_SAMPLES) -> np.ndarray:
    """The first ``limit`` images as flat float64 vectors in [0, 1]."""
    images = np.asarray(images[:limit])
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def rbf_bandwidth(real_vectors: np.ndarray) -> float:
    """σ for the MMD kernel: the median pairwise distance among the real samples (median heuristic).

    It depends only on the real set, so every evaluation against the same real data uses the same kernel
    and the numbers stay comparable across checkpoints and runs.
    """
    distances = _squared_distances(real_vectors, real_vectors)[np.triu_indices(len(real_vectors), k=1)]
    median = float(np.sqrt(np.median(distances)))
    return median if median > 0 else 1.0


def mmd(real_vectors: np.ndarray, fake_vectors: np.ndarray, bandwidth: float) -> float:
    """Unbiased MMD² with k(x, y) = exp(−|x − y|² / (2σ²))."""
    if real_vectors.shape[1:] != fake_vectors.shape[1:]:
        raise UserError(f"MMD compares pixels, so both sets need the same image size; got {real_vectors.shape[1]} "
                        f"and {fake_vectors.shape[1]} values per image")
    if min(len(real_vectors), len(fake_vectors)) < 2:
        raise UserError("MMD needs at least 2 images per set")
    gamma = 1.0 / (2.0 * bandwidth**2)

    def kernel(x, y):
        return np.exp(-gamma * _squared_distances(x, y))

    return _unbiased_mmd2(kernel(real_vectors, real_vectors), kernel(fake_vectors, fake_vectors),
                          kernel(real_vectors, fake_vectors))
