"""Images -> 2048-d FID Inception features, in fixed-size batches with a progress bar."""
from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from evaluation import data_parallel
from evaluation.inception import FEATURE_DIM, FLOAT, LegacyResizeAndScale, build_inception
from evaluation.weights import resolve_inception_weights, sha256_of
from infra.errors import UserError

DEFAULT_BATCH_SIZE = 32


def as_image_batch(images: np.ndarray, source: str = "images") -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, 1|3) -> uint8 (N, H, W, C); anything else is a one-line UserError."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise UserError(f"{source}: got {images.dtype} {images.shape}; expected uint8 (N, H, W[, 1|3]) with N >= 1")
    return images


@functools.cache
def _network(weights_path: Path) -> keras.Model:
    """Built once per weights file and process: building reads 87 MB and creates ~100 layers."""
    return build_inception(weights_path)


@functools.cache
def weights_digest(weights_path: Path) -> str:
    return sha256_of(weights_path)


class InceptionEmbedder:
    """Embeds uint8 images of any size with the canonical FID pipeline (resize, scale, Inception pool3).

    On JAX with several local devices each batch is split over all of them (see
    :mod:`evaluation.data_parallel`); ``batch_size`` is the whole batch across devices.
    """

    def __init__(self, inception_weights=None, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True):
        self.weights_path = resolve_inception_weights(inception_weights).resolve()
        self.batch_size = batch_size
        self.progress = progress
        self._models: dict[tuple[int, int, int], keras.Model] = {}
        self.distribution = data_parallel.local_data_parallel()
        self.device_count = data_parallel.device_count(self.distribution)

    @property
    def digest(self) -> str:
        """Identifies the weights, so cached features are never reused with another network."""
        return weights_digest(self.weights_path)

    def _model_for(self, shape: tuple[int, int, int]) -> keras.Model:
        """Resize-and-scale for this input size in front of the shared network, compiled once per size."""
        if shape not in self._models:
            with data_parallel.scope(self.distribution):  # the shared network's weights go on every device
                inputs = keras.Input(shape, dtype=FLOAT)
                features = _network(self.weights_path)(LegacyResizeAndScale(*shape)(inputs))
                self._models[shape] = keras.Model(inputs, features)
        return self._models[shape]

    def embed(self, images: np.ndarray, description: str = "Inception features") -> np.ndarray:
        """float32 (N, 2048). The last batch is zero-padded to full size so the compiled step is reused."""
        images = as_image_batch(images)
        model = self._model_for(images.shape[1:])
        # Every device gets an equal slice, so the batch is a multiple of their count (padding is dropped).
        batch_size = -(-min(self.batch_size, len(images)) // self.device_count) * self.device_count
        features = np.empty((len(images), FEATURE_DIM), dtype=np.float32)
        with tqdm(total=len(images), desc=description, unit="img", disable=not self.progress, leave=False) as bar:
            for start in range(0, len(images), batch_size):
                batch = images[start:start + batch_size].astype(np.float32)
                count = len(batch)
                if count < batch_size:
                    batch = np.concatenate([batch, np.zeros((batch_size - count, *batch.shape[1:]), np.float32)])
                with data_parallel.scope(self.distribution):
                    batch = data_parallel.split_batch(batch, self.distribution)
                    features[start:start + count] = np.asarray(model.predict_on_batch(batch))[:count]
                bar.update(count)
        return features
