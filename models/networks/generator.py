"""Generators: latent vector (and label) in, images in [-1, 1] (tanh) or [0, 1] (sigmoid) out.

Built from keras.layers only, so that generator.keras loads with plain keras.saving.load_model; the one
exceptions, the shapes and vector generators' renderers, are registered layers that load once
models.networks.shapes and models.networks.vector are imported."""
from __future__ import annotations

import keras
from keras import layers

from infra.errors import UserError
from models.config import resolve_network
from models.config.defaults import AUTO_PALETTE_MULTI
from models.networks import resnet, shapes, vector
from models.networks.attention import AttentionPlacement
from models.networks.blocks import (auto_width, conv, dense, drop, embed, hidden, label_input,
                                    palette_skipped_doublings, upsamplings)
from models.networks.excitation import FeatureMapHooks


def build_generator(options: dict, image_shape: tuple, latent_dim: int, num_classes: int | None) -> keras.Model:
    """Inputs ``[z (B, latent_dim)]``, plus ``labels`` int32 (B,) when conditional; output (B, H, W, C)."""
    opts = resolve_network(options, "generator")
    if opts["palette"] == "auto":  # a run settles it from its data (models.train); built without data, it is
        opts = {**opts, "palette": AUTO_PALETTE_MULTI}  # the multi-colour palette, as the bench scripts build presets
    z = keras.Input(shape=(latent_dim,), name="z")
    inputs, x = [z], z
    if opts["conditional"]:
        labels = label_input(num_classes, "generator")
        inputs.append(labels)
        if opts["conditioning"] == "batch_norm":
            opts = {**opts, "batch_norm_labels": (labels, num_classes)}
        else:
            x = layers.Concatenate()([z, embed(labels, num_classes, opts)])
    body = {"mlp": _mlp_body, "conv": _conv_body, "resnet": resnet.generator_body,
            "shapes": shapes.generator_body, "vector": None}[opts["architecture"]]
    feature_maps = FeatureMapHooks(opts, AttentionPlacement(opts, "generator"))
    if opts["architecture"] == "vector":
        # The palette's colours are part of the scene the renderer paints (and an SVG names), not a pixel mix.
        x = vector.generator_body(x, _palette_colours(x, image_shape[-1], opts), opts, tuple(image_shape), noise=z)
        activation = "linear"
    elif opts["palette"]:
        height, width, channels = image_shape
        logits = body(x, opts, (height, width, opts["palette"]), feature_maps)
        if opts["palette_scale"] > 1:
            # Logits drawn at a fraction of the size and smoothly enlarged: the softmax still cuts crisp edges
            # between flat areas, but the generator cannot paint pixel-level speckle.
            logits = layers.UpSampling2D(opts["palette_scale"], interpolation="bilinear")(logits)
        x = _palette_mix(logits, _palette_colours(x, channels, opts))
        activation = "linear"  # the colours already went through the output activation
    else:
        x = body(x, opts, tuple(image_shape), feature_maps)
        activation = opts["output_activation"]
    feature_maps.check()
    images = layers.Activation(activation, dtype="float32", name="images")(x)
    return keras.Model(inputs, images, name=f"generator_{opts['choice']}")


def _palette_colours(x, channels: int, opts: dict):
    """(B, palette, C) colours in the output range, from the generator's input (latent vector and label); with a
    palette_background, entry 0 is that fixed colour and the input chooses the others."""
    entries, activation = opts["palette"], opts["output_activation"]
    # The entries start as distinct greys, dark to light: equal entries would leave the mix's weights without a
    # gradient, and the softmax without a reason to choose. The grey nearest a fixed background is left out.
    greys = [-1.5 + 3.0 * index / (entries - 1) for index in range(entries)]
    background = opts["palette_background"]
    if background == "auto":  # a run replaces it from its data (models.train); built without data, it is learned
        background = None
    if opts["architecture"] == "vector" and background is None:
        greys.reverse()  # entry 0 is the vector generator's canvas, which in logo data is mostly light
    if background is not None:
        rgb = [int(background[start:start + 2], 16) / 255.0 for start in (1, 3, 5)]
        luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]  # ITU-R 601, as Pillow's "L"
        greys.remove(min(greys, key=lambda grey: abs(grey - (-1.5 + 3.0 * luma))))
    hidden_units = max(4 * entries * channels, 64)
    spread = [grey for grey in greys for _ in range(channels)]
    colours = dense(len(greys) * channels, opts, bias_initializer=keras.initializers.Constant(spread))(
        layers.Activation("relu")(dense(hidden_units, opts)(x)))
    colours = layers.Activation(activation)(colours)
    if background is not None:
        unit = rgb if channels == 3 else [luma]
        in_range = [2.0 * value - 1.0 if activation == "tanh" else value for value in unit]
        # A frozen dense layer with a zero kernel: the same colour for every image, from keras.layers alone.
        fixed = layers.Dense(channels, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(
            in_range), trainable=False, name="palette_background")(x)
        colours = layers.Concatenate()([fixed, colours])
    return layers.Reshape((entries, channels))(colours)


def _palette_mix(logits, colours):
    """Each pixel as the softmax-weighted mix of the image's palette: (B, H, W, K) x (B, K, C) -> (B, H, W, C).
    The mix stays inside the output range, and sharp logits give flat areas with crisp edges."""
    height, width, entries = logits.shape[1:]
    weights = layers.Reshape((height * width, entries))(layers.Softmax(axis=-1)(logits))
    mixed = layers.Dot(axes=(2, 1))([weights, colours])
    return layers.Reshape((height, width, colours.shape[-1]))(mixed)


def _mlp_body(x, opts: dict, image_shape: tuple, feature_maps: FeatureMapHooks):
    """Dense layers (the first without normalization, as the toolkit's gan), then one dense layer per pixel value."""
    for index, units in enumerate(opts["widths"]):
        x = hidden(dense(units, opts)(x), opts, normalized=index > 0)
        if index == 0:
            x = drop(x, opts)
    height, width, channels = image_shape
    return layers.Reshape(image_shape)(dense(height * width * channels, opts)(x))


def _conv_body(x, opts: dict, image_shape: tuple, feature_maps: FeatureMapHooks):
    """Project to a small base image, then convs that double the size until it is the image size (or, with a
    palette_scale, that size divided by it: the last doublings are left to the palette's smooth upsampling)."""
    height, width, channels = image_shape
    doubling_count = upsamplings(opts["base_size"], height, width)
    skipped = palette_skipped_doublings(opts, doubling_count, height, width)
    base_height, base_width = height >> doubling_count, width >> doubling_count
    widths = opts["widths"]
    if widths is None:
        widths = [auto_width(depth, opts) for depth in range(doubling_count - 2, -1, -1)]
    elif len(widths) + 1 < doubling_count:
        raise UserError(
            f"generator.widths: {widths} gives {len(widths) + 1} conv layers but {height}x{width} px from the "
            f"{base_height}x{base_width} base needs {doubling_count} upsamplings; give at least "
            f"{doubling_count - 1} widths"
        )
    channels_at_base = opts["base_width"] or auto_width(max(doubling_count - 1, 0), opts)
    x = dense(base_height * base_width * channels_at_base, opts)(x)
    x = layers.Reshape((base_height, base_width, channels_at_base))(x)
    x = feature_maps.visit(drop(hidden(x, opts), opts))
    for index, filters in enumerate([*widths, channels]):
        x = _conv_layer(x, filters, index < doubling_count - skipped, opts)
        if index < len(widths):
            x = feature_maps.visit(hidden(x, opts))
    return x


def _conv_layer(x, filters: int, upsample: bool, opts: dict):
    if not upsample:
        return conv(filters, opts["refine_kernel_size"], opts)(x)
    if opts["upsampling"] == "transpose":
        return conv(filters, opts["kernel_size"], opts, strides=2, transpose=True)(x)
    interpolation = "bilinear" if opts["upsampling"] == "bilinear" else "nearest"
    return conv(filters, opts["kernel_size"], opts)(layers.UpSampling2D(interpolation=interpolation)(x))
