"""Discriminators and critics: images (and label) in, one raw score per image out - no sigmoid, the losses
apply whatever squashing they need."""
from __future__ import annotations

import math

import keras
from keras import layers

from infra.cli import UserError
from models.networks.blocks import conv, dense, doublings, drop, embed, hidden, label_input
from models.networks.options import resolve_options


def build_discriminator(options: dict, image_shape: tuple, num_classes: int | None) -> keras.Model:
    """Inputs ``[images (B, H, W, C)]``, plus ``labels`` int32 (B,) when conditional; output (B, 1) raw scores."""
    opts = resolve_options(options, "discriminator")
    image_shape = tuple(image_shape)
    images = keras.Input(shape=image_shape, name="images")
    inputs, x = [images], images
    mlp = opts["architecture"] == "mlp"
    if mlp:
        x = layers.Flatten()(x)
    if opts["conditional"]:
        labels = label_input(num_classes, "discriminator")
        inputs.append(labels)
        label_features = embed(labels, num_classes, opts)
        if not mlp:
            height, width, _ = image_shape
            label_features = layers.Reshape((height, width, 1))(dense(height * width, opts)(label_features))
        x = layers.Concatenate()([x, label_features])
    x = _mlp_body(x, opts) if mlp else _conv_body(x, opts, image_shape)
    score = dense(1, opts, dtype="float32", name="score")(layers.Flatten()(x))
    return keras.Model(inputs, score, name=f"discriminator_{opts['choice']}")


def _mlp_body(x, opts: dict):
    for units in opts["widths"]:
        x = drop(hidden(dense(units, opts)(x), opts), opts)
    return x


def _conv_body(x, opts: dict, image_shape: tuple):
    """Convs (the first without normalization, as in DCGAN), each halving the size when strides is 2."""
    widths = opts["widths"]
    if widths is None:
        depth = max(doublings(*image_shape[:2]), 1)
        widths = [min(opts["width"] * 2**index, opts["max_width"]) for index in range(depth)]
    _check_size(image_shape, widths, opts)
    for index, filters in enumerate(widths):
        x = conv(filters, opts["kernel_size"], opts, strides=opts["strides"], padding=opts["padding"])(x)
        x = drop(hidden(x, opts, normalized=index > 0), opts)
    return x


def _check_size(image_shape: tuple, widths: list, opts: dict) -> None:
    """'valid' convs shrink the image; refuse a stack that would shrink it to nothing."""
    size = min(image_shape[:2])
    shrink = opts["kernel_size"] - 1 if opts["padding"] == "valid" else 0
    for _ in widths:
        size = math.ceil((size - shrink) / opts["strides"])
        if size < 1:
            raise UserError(
                f"discriminator.widths: {len(widths)} convs with kernel {opts['kernel_size']}, stride "
                f"{opts['strides']} and {opts['padding']} padding shrink {image_shape[0]}x{image_shape[1]} px "
                "images to nothing; use fewer widths, a smaller kernel or padding 'same'"
            )
