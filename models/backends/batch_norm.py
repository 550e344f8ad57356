"""What both backends' compiled batch-norm update shares: every batch-norm layer's momentum replaced while the
call is traced, so the momentum is an argument of the compiled program and not a constant traced into it."""
from __future__ import annotations

from contextlib import contextmanager

import keras


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


@contextmanager
def momentum_replaced(layers: list[keras.layers.BatchNormalization], momentum):
    """``layers`` average their moving statistics with ``momentum`` (a tensor while tracing) inside, then go back
    to their own: Keras reads ``layer.momentum`` when the call is traced, and the saved model keeps the float."""
    kept = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = momentum
    try:
        yield
    finally:
        for layer, value in zip(layers, kept):
            layer.momentum = value
