"""Generator inputs and outputs: noise and labels in, uint8 images out."""
from __future__ import annotations

import numpy as np
from keras import ops

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
        chunks.append(to_uint8(ops.convert_to_numpy(generator(inputs, training=False)), output_activation))
    return np.concatenate(chunks)
