"""Spectral normalization outside training mode.

keras.layers.SpectralNormalization divides the kernel by its largest singular value and assigns the result in
every training-mode call, so an eagerly trained network (TensorFlow) keeps normalized kernels. Under
``stateless_call`` (the JAX trainer) that kernel assignment is not returned, only the power-iteration vector:
the trained weights stay unnormalized and an inference-mode call would use them as they are.
:func:`normalize_spectral_kernels` stores the normalized kernels, as a training-mode call would.
"""
from __future__ import annotations

import keras
from keras import layers, ops


def normalize_spectral_kernels(model: keras.Model) -> int:
    """Store kernel / sigma (one more power iteration) in every SpectralNormalization layer of ``model``;
    returns how many layers it normalized. An all-zero kernel is left alone, as the layer does."""
    count = 0
    for layer in model.layers:
        if isinstance(layer, layers.SpectralNormalization) and layer.built:
            if bool(ops.convert_to_numpy(ops.any(ops.not_equal(layer.kernel.value, 0)))):
                vector_u, kernel = layer.normalized_weights()
                layer.vector_u.assign(vector_u)
                layer.kernel.assign(kernel)
                count += 1
    return count


def count_spectral_layers(model: keras.Model) -> int:
    return sum(isinstance(layer, layers.SpectralNormalization) for layer in model.layers)
