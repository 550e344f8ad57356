"""Compare generated images with one fixed real set: FID, KID, MMD and class accuracy.

Everything derived from the real images (Inception features and statistics, the MMD bandwidth, the
class judge) is computed once, cached per dataset content hash, and reused by every ``evaluate`` call,
which then only embeds the generated images. The trainer creates one Evaluator per run and calls it
every ``eval_interval`` steps; ``python -m models.evaluate`` uses it for any two image sets.

``evaluate`` returns ``{"fid"}``, ``{"kid", "kid_std"}``, ``{"mmd"}`` and/or ``{"class_accuracy"}``;
the key named like the metric is the one to rank checkpoints by (see :data:`evaluation.metrics.METRICS`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from evaluation import metrics as formulas
from evaluation.cache import cached_arrays, content_hash, default_cache_dir
from evaluation.features import InceptionEmbedder, as_image_batch
from evaluation.metrics import parse_metrics
from infra.errors import UserError

INCEPTION_METRICS = ("fid", "kid")


class Evaluator:
    """Holds what the real images give the chosen metrics; ``evaluate`` scores a set of generated images."""

    def __init__(self, real_images: np.ndarray, metrics: Sequence[str], *, real_labels=None, class_names=None,
                 cache_dir=None, inception_weights=None, batch_size: int | None = None, progress: bool = True):
        self.metrics = parse_metrics(metrics)
        self.real_images = as_image_batch(real_images, "real images")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.progress = progress
        self._real_hash = content_hash(self.real_images)
        if any(metric in INCEPTION_METRICS for metric in self.metrics):
            options = {"batch_size": batch_size} if batch_size else {}
            self.embedder = InceptionEmbedder(inception_weights, progress=progress, **options)
            self._real_inception()
        if "mmd" in self.metrics:
            self.real_pixels = formulas.pixel_vectors(self.real_images)
            self.mmd_bandwidth = formulas.rbf_bandwidth(self.real_pixels)
        if "class_accuracy" in self.metrics:
            self._init_class_judge(real_labels, class_names)

    def _real_inception(self) -> None:
        """Real features and Gaussian statistics, from the cache when this data was seen before."""
        key = f"inception-{self._real_hash[:24]}-{self.embedder.digest[:12]}.npz"

        def compute():
            features = self.embedder.embed(self.real_images, "real images")
            stats = formulas.GaussianStats.of(features)
            return {"features": features, "mean": stats.mean, "covariance": stats.covariance}

        arrays = cached_arrays(self.cache_dir / key, compute)
        self.real_features = arrays["features"]
        self.real_stats = formulas.GaussianStats.of(self.real_features, arrays["mean"], arrays["covariance"])

    def _init_class_judge(self, real_labels, class_names) -> None:
        from evaluation.classifier import ClassJudge  # trains a CNN; only needed for this metric

        if real_labels is None:
            raise UserError("class_accuracy needs labelled real data; this dataset has no labels")
        labels = np.asarray(real_labels, dtype=np.int64)
        if labels.shape != (len(self.real_images),):
            raise UserError(f"real labels have shape {labels.shape}; expected ({len(self.real_images)},)")
        num_classes = len(class_names) if class_names else int(labels.max()) + 1
        self.class_judge = ClassJudge(self.real_images, labels, num_classes, self.cache_dir, self.progress)

    def evaluate(self, fake_images: np.ndarray, fake_labels: np.ndarray | None = None) -> dict[str, float]:
        fake = as_image_batch(fake_images, "generated images")
        results: dict[str, float] = {}
        if any(metric in INCEPTION_METRICS for metric in self.metrics):
            features = self.embedder.embed(fake, "generated images")
            if "fid" in self.metrics:
                results["fid"] = formulas.frechet_distance(self.real_stats, formulas.GaussianStats.of(features))
            if "kid" in self.metrics:
                results["kid"], results["kid_std"] = formulas.kid(self.real_features, features)
        if "mmd" in self.metrics:
            results["mmd"] = formulas.mmd(self.real_pixels, formulas.pixel_vectors(fake), self.mmd_bandwidth)
        if "class_accuracy" in self.metrics:
            results["class_accuracy"] = self._class_accuracy(fake, fake_labels)
        return results

    def _class_accuracy(self, fake: np.ndarray, fake_labels) -> float:
        if fake_labels is None:
            raise UserError("class_accuracy needs the class each generated image was asked for (a conditional "
                            "generator)")
        if fake.shape[1:] != self.class_judge.image_shape:
            raise UserError(f"class_accuracy: generated images are {fake.shape[1:]}, the real ones "
                            f"{self.class_judge.image_shape}; they must match")
        labels = np.asarray(fake_labels, dtype=np.int64)
        if labels.shape != (len(fake),):
            raise UserError(f"generated labels have shape {labels.shape}; expected ({len(fake)},)")
        return self.class_judge.score(fake, labels)
