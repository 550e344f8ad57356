"""Residual generator and discriminator bodies in the style of SNGAN (Miyato et al. 2018) and BigGAN (Brock et
al. 2019): pre-activation blocks of two 3x3 convs with a 1x1-conv shortcut where the shape changes."""
from __future__ import annotations

from keras import layers

from infra.errors import UserError
from models.networks.attention import AttentionPlacement
from models.networks.blocks import (activate, auto_width, conv, dense, doublings, drop, hidden, normalize,
                                    palette_skipped_doublings, upsamplings)
from models.networks.excitation import FeatureMapHooks


def generator_body(x, opts: dict, image_shape: tuple, feature_maps: FeatureMapHooks):
    """Project to the base size, one block per width (the first ones doubling the size), then norm -> activation
    -> 3x3 conv to the image channels. With a palette_scale the blocks stop that many times smaller: the last
    doublings are left to the palette's smooth upsampling, and so are their blocks by default."""
    height, width, channels = image_shape
    doubling_count = upsamplings(opts["base_size"], height, width)
    base_height, base_width = height >> doubling_count, width >> doubling_count
    kept = doubling_count - palette_skipped_doublings(opts, doubling_count, height, width)
    widths = opts["widths"]
    if widths is None:
        widths = [auto_width(max(doubling_count - 2 - index, 0), opts) for index in range(max(kept, 1))]
    elif len(widths) < kept:
        raise UserError(
            f"generator.widths: {widths} gives {len(widths)} residual blocks but {height}x{width} px from the "
            f"{base_height}x{base_width} base needs {kept} upsamplings; give at least {kept} widths"
        )
    base_channels = opts["base_width"] or auto_width(max(doubling_count - 1, 0), opts)
    x = dense(base_height * base_width * base_channels, opts)(x)
    x = feature_maps.visit(drop(layers.Reshape((base_height, base_width, base_channels))(x), opts))
    for index, filters in enumerate(widths):
        x = feature_maps.visit(_generator_block(x, filters, index < kept, opts))
    return conv(channels, 3, opts)(hidden(x, opts))


def _generator_block(x, filters: int, upsample: bool, opts: dict):
    """norm -> act -> (upsample) -> conv3x3 -> norm -> act -> conv3x3, plus the (upsampled) shortcut."""
    residual = hidden(x, opts)
    if upsample:
        residual = layers.UpSampling2D()(residual)
    residual = conv(filters, 3, opts)(hidden(conv(filters, 3, opts)(residual), opts))
    shortcut = x
    if upsample or x.shape[-1] != filters:
        # Before the upsampling: a 1x1 conv commutes with nearest-neighbour upsampling, on a quarter of the pixels.
        shortcut = conv(filters, 1, opts)(shortcut)
    if upsample:
        shortcut = layers.UpSampling2D()(shortcut)
    return layers.Add()([residual, shortcut])


def discriminator_body(x, opts: dict, image_shape: tuple, attention: AttentionPlacement):
    """One block per width: the first (optimized) block halves the size, the next ones halve it while it stays
    even and >= 4, the rest keep it. Returns the last feature map; :func:`pooled_features` reads it."""
    height, width = image_shape[:2]
    widths = opts["widths"]
    if widths is None:
        widths = [auto_width(index, opts) for index in range(max(doublings(height, width), 1))]
    for index, filters in enumerate(widths):
        height, width = x.shape[1:3]
        downsample = index == 0 or (height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4)
        x = attention.visit(drop(_discriminator_block(x, filters, opts, first=index == 0, downsample=downsample),
                                 opts))
    return x


def pooled_features(x, opts: dict):
    """Activation and global sum pooling of the last feature map: (B, C) features for the score."""
    pixels = x.shape[1] * x.shape[2]
    # Sum, not mean, pooling as SNGAN: the built-in average times the pixel count.
    return layers.Rescaling(float(pixels))(layers.GlobalAveragePooling2D()(activate(x, opts)))


def _discriminator_block(x, filters: int, opts: dict, *, first: bool, downsample: bool):
    """(norm -> act ->) conv3x3 -> norm -> act -> conv3x3 (-> avgpool), plus the shortcut; the first block starts
    straight with the conv, on the images."""
    residual = x if first else activate(normalize(x, opts), opts)
    residual = conv(filters, 3, opts)(hidden(conv(filters, 3, opts)(residual), opts))
    shortcut = x
    if downsample:
        residual = layers.AveragePooling2D(2, padding="same")(residual)
        # Pooling before the 1x1 conv: the two commute, and the conv then runs on a quarter of the pixels.
        shortcut = layers.AveragePooling2D(2, padding="same")(shortcut)
    if downsample or x.shape[-1] != filters:
        shortcut = conv(filters, 1, opts)(shortcut)
    return layers.Add()([residual, shortcut])
