"""Layer helpers shared by the generators and discriminators (keras.layers only, so any backend runs them)."""
from __future__ import annotations

import keras
from keras import layers

from infra.cli import UserError


def kernel_initializer(std: float | None):
    """A fresh initializer per layer: one seeded instance reused would give every layer the same kernel."""
    return "glorot_uniform" if std is None else keras.initializers.RandomNormal(mean=0.0, stddev=std)


def dense(units: int, opts: dict, **kwargs) -> layers.Dense:
    return layers.Dense(units, kernel_initializer=kernel_initializer(opts["init_std"]), **kwargs)


def conv(filters: int, kernel: int, opts: dict, *, strides=1, padding="same", transpose=False):
    layer = layers.Conv2DTranspose if transpose else layers.Conv2D
    return layer(filters, kernel, strides=strides, padding=padding, kernel_initializer=kernel_initializer(opts["init_std"]))


def normalize(x, opts: dict):
    """Batch norm, layer norm over all of a sample's features, or nothing, as configured."""
    if opts["normalization"] == "batch":
        return layers.BatchNormalization(momentum=opts["batch_norm_momentum"])(x)
    if opts["normalization"] == "layer":
        return layers.LayerNormalization(axis=list(range(1, len(x.shape))))(x)
    return x


def activate(x, opts: dict):
    if opts["activation"] == "leaky_relu":
        return layers.LeakyReLU(negative_slope=opts["leaky_relu_slope"])(x)
    return layers.Activation(opts["activation"])(x)


def drop(x, opts: dict):
    return layers.Dropout(opts["dropout"])(x) if opts["dropout"] > 0 else x


def hidden(x, opts: dict, *, normalized: bool = True):
    """What follows every hidden layer: normalization (unless this layer skips it), then the activation."""
    return activate(normalize(x, opts) if normalized else x, opts)


def label_input(num_classes: int | None, role: str):
    """The integer class-label input of a conditional network; a UserError when the data has no labels."""
    if not num_classes:
        raise UserError(
            f"{role}.conditional: a conditional network needs a labelled dataset (with 'y' and class names) "
            "and this one has none; set conditional to false or pick a non-cgan choice"
        )
    return keras.Input(shape=(), dtype="int32", name="labels")


def embed(labels, num_classes: int, opts: dict):
    return layers.Embedding(num_classes, opts["embedding_dim"], name="label_embedding")(labels)


def doublings(height: int, width: int) -> int:
    """How many times the image size halves to a whole base size >= 4 (28 -> 7: twice; 64 -> 4: four times)."""
    count = 0
    while height % 2 == 0 and width % 2 == 0 and height // 2 >= 4 and width // 2 >= 4:
        height, width, count = height // 2, width // 2, count + 1
    return count
