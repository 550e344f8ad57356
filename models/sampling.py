"""Generator inputs and outputs: noise and labels in, uint8 images out."""
from __future__ import annotations

import numpy as np
from keras import ops

from models.backends import compiled_batch_norm_update
from models.backends.batch_norm import batch_norm_layers
from models.images import to_uint8


def latent_vectors(rng: np.random.Generator, count: int, latent_dim: int) -> np.ndarray:
    return rng.standard_normal((count, latent_dim), dtype=np.float32)


def generate_uint8(generator, random_latent_vectors: np.ndarray, labels: np.ndarray | None,
                   output_activation: str, batch_size: int = 256) -> np.ndarray:
    """Run ``generator`` in inference mode in batches; ``labels`` only for a conditional generator."""
    chunks = []
    for start in range(0, len(random_latent_vectors), batch_size):
        noise = random_latent_vectors[start:start + batch_size]
        inputs = [noise] if labels is None else [noise, labels[start:start + batch_size].astype(np.int32)]
        images = ops.cast(generator(inputs, training=False), "float32")  # mixed precision: bfloat16 out
        chunks.append(to_uint8(ops.convert_to_numpy(images), output_activation))
    return np.concatenate(chunks)


class StandingStatistics:
    """Sets every batch-norm layer's moving mean and variance of ``generator`` to their average over training-mode
    batches ("standing statistics"), one compiled call per batch, compiled at the first recompute and kept."""

    def __init__(self, generator):
        self.generator = generator
        self.layer_count = len(batch_norm_layers(generator))
        self._update = None

    def recompute(self, random_latent_vectors: np.ndarray, labels: np.ndarray | None, batches: int) -> int:
        """Average over ``batches`` batches of these inputs; returns how many layers were reset. The layers'
        momentum is theirs again afterwards."""
        if not self.layer_count:
            return 0
        if self._update is None:
            self._update = compiled_batch_norm_update(self.generator)
        for index, (noise, chunk_labels) in enumerate(_chunks(random_latent_vectors, labels, batches)):
            # momentum index / (index + 1): a running mean over the batches seen so far
            self._update([noise] if chunk_labels is None else [noise, chunk_labels], index / (index + 1))
        return self.layer_count


def _chunks(random_latent_vectors, labels, batches):
    for noise_chunk, index in zip(np.array_split(random_latent_vectors, batches),
                                  np.array_split(np.arange(len(random_latent_vectors)), batches)):
        yield noise_chunk, None if labels is None else labels[index].astype(np.int32)
