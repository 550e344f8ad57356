"""Generator inputs and outputs: noise and labels in, uint8 images out."""
from __future__ import annotations

import keras
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
        images = ops.cast(generator(inputs, training=False), "float32")  # mixed precision: bfloat16 out
        chunks.append(to_uint8(ops.convert_to_numpy(images), output_activation))
    return np.concatenate(chunks)


def recompute_batch_norm_statistics(generator, random_latent_vectors: np.ndarray, labels: np.ndarray | None,
                                    batches: int) -> int:
    """Set every batch-norm layer's moving mean and variance to their average over ``batches`` training-mode
    batches of ``generator`` on these inputs ("standing statistics"); returns how many layers were reset.
    Only those statistics change: the layers' momentum is restored afterwards."""
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return 0
    momenta = [layer.momentum for layer in norms]
    try:
        for index, (noise, chunk_labels) in enumerate(_chunks(random_latent_vectors, labels, batches)):
            for layer in norms:
                layer.momentum = index / (index + 1)  # a running mean over the batches seen so far
            generator([noise] if chunk_labels is None else [noise, chunk_labels], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return len(norms)


def _chunks(random_latent_vectors, labels, batches):
    for noise_chunk, index in zip(np.array_split(random_latent_vectors, batches),
                                  np.array_split(np.arange(len(random_latent_vectors)), batches)):
        yield noise_chunk, None if labels is None else labels[index].astype(np.int32)
