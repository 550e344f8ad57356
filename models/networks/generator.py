"""Generators: latent vector (and label) in, images in [-1, 1] (tanh) or [0, 1] (sigmoid) out."""
from __future__ import annotations

import keras
from keras import layers

from infra.cli import UserError
from models.networks.blocks import conv, dense, doublings, drop, embed, hidden, label_input
from models.networks.options import resolve_options


def build_generator(options: dict, image_shape: tuple, latent_dim: int, num_classes: int | None) -> keras.Model:
    """Inputs ``[z (B, latent_dim)]``, plus ``labels`` int32 (B,) when conditional; output (B, H, W, C)."""
    opts = resolve_options(options, "generator")
    z = keras.Input(shape=(latent_dim,), name="z")
    inputs, x = [z], z
    if opts["conditional"]:
        labels = label_input(num_classes, "generator")
        inputs.append(labels)
        x = layers.Concatenate()([z, embed(labels, num_classes, opts)])
    body = _mlp_body if opts["architecture"] == "mlp" else _conv_body
    x = body(x, opts, tuple(image_shape))
    images = layers.Activation(opts["output_activation"], dtype="float32", name="images")(x)
    return keras.Model(inputs, images, name=f"generator_{opts['choice']}")


def _mlp_body(x, opts: dict, image_shape: tuple):
    """Dense layers (the first without normalization, as the toolkit's gan), then one dense layer per pixel value."""
    for index, units in enumerate(opts["widths"]):
        x = hidden(dense(units, opts)(x), opts, normalized=index > 0)
        if index == 0:
            x = drop(x, opts)
    height, width, channels = image_shape
    return layers.Reshape(image_shape)(dense(height * width * channels, opts)(x))


def _conv_body(x, opts: dict, image_shape: tuple):
    """Project to a small base image, then convs that double the size until it is the image size."""
    height, width, channels = image_shape
    upsamplings = _upsamplings(opts["base_size"], height, width)
    base_height, base_width = height >> upsamplings, width >> upsamplings
    auto_width = lambda depth: min(opts["width"] * 2**depth, opts["max_width"])  # noqa: E731
    widths = opts["widths"]
    if widths is None:
        widths = [auto_width(depth) for depth in range(upsamplings - 2, -1, -1)]
    elif len(widths) + 1 < upsamplings:
        raise UserError(
            f"generator.widths: {widths} gives {len(widths) + 1} conv layers but {height}x{width} px from the "
            f"{base_height}x{base_width} base needs {upsamplings} upsamplings; give at least {upsamplings - 1} widths"
        )
    channels_at_base = opts["base_width"] or auto_width(max(upsamplings - 1, 0))
    x = dense(base_height * base_width * channels_at_base, opts)(x)
    x = layers.Reshape((base_height, base_width, channels_at_base))(x)
    x = drop(hidden(x, opts), opts)
    for index, filters in enumerate([*widths, channels]):
        x = _conv_layer(x, filters, index < upsamplings, opts)
        if index < len(widths):
            x = hidden(x, opts)
    return x


def _upsamplings(base_size: int | None, height: int, width: int) -> int:
    if base_size is None:
        return doublings(height, width)
    ratio = height // base_size
    if height % base_size or ratio & (ratio - 1) or width % ratio:
        raise UserError(
            f"generator.base_size: {base_size} does not double up to {height}x{width} px images; use a size whose "
            "doublings reach the image height (e.g. 7 or 14 for 56 px), or null to choose it from the image"
        )
    return ratio.bit_length() - 1


def _conv_layer(x, filters: int, upsample: bool, opts: dict):
    if not upsample:
        return conv(filters, opts["refine_kernel_size"], opts)(x)
    if opts["upsampling"] == "transpose":
        return conv(filters, opts["kernel_size"], opts, strides=2, transpose=True)(x)
    return conv(filters, opts["kernel_size"], opts)(layers.UpSampling2D()(x))
