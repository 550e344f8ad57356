"""Discriminators and critics: images (and label) in, one raw score per image out - no sigmoid, the losses
apply whatever squashing they need."""
from __future__ import annotations

import math

import keras
from keras import layers

from infra.errors import UserError
from models.config import resolve_network
from models.networks import resnet
from models.networks.attention import AttentionPlacement
from models.networks.blocks import conv, dense, doublings, drop, embed, hidden, label_input
from models.networks.minibatch import MinibatchStd


def build_discriminator(options: dict, image_shape: tuple, num_classes: int | None,
                        classifier_classes: int | None = None, reconstruction_scale: int | None = None
                        ) -> keras.Model:
    """Inputs ``[images (B, H, W, C)]``, plus ``labels`` int32 (B,) when conditional; output (B, 1) raw scores.

    With ``classifier_classes`` (AC-GAN's auxiliary classifier) the output is (B, 1 + classifier_classes): the
    score, then one class logit per class, both read from the same features. With ``reconstruction_scale``
    (FastGAN's self-supervised discriminator) a decoder on the last feature map redraws the input at
    1/reconstruction_scale of its size (see :func:`reconstruction_shape`), flattened after the rest.
    """
    opts = resolve_network(options, "discriminator")
    image_shape = tuple(image_shape)
    images = keras.Input(shape=image_shape, name="images")
    inputs, x, labels = [images], images, None
    mlp = opts["architecture"] == "mlp"
    if mlp:
        x = layers.Flatten()(x)
    if opts["conditional"]:
        labels = label_input(num_classes, "discriminator")
        inputs.append(labels)
        if opts["conditioning"] == "concat":
            x = layers.Concatenate()([x, _label_features(labels, num_classes, opts, image_shape, mlp)])
    body = {"mlp": _mlp_body, "conv": _conv_body, "resnet": resnet.discriminator_body}[opts["architecture"]]
    attention = AttentionPlacement(opts, "discriminator")
    x = body(x, opts, image_shape, attention)
    attention.check()
    feature_map = x
    if opts["minibatch_std"]:
        x = MinibatchStd(opts["minibatch_std"], name="minibatch_std")(x)
    if opts["architecture"] == "resnet":
        x = resnet.pooled_features(x, opts)
    features = layers.Flatten()(x) if len(x.shape) > 2 else x
    if opts["conditioning"] == "projection" and labels is not None:
        score = _projection_score(features, labels, num_classes, opts)
    else:
        score = dense(1, opts, dtype="float32", name="score")(features)
    if classifier_classes:
        class_logits = dense(classifier_classes, opts, dtype="float32", name="class_logits")(features)
        score = layers.Concatenate(dtype="float32", name="score_and_class_logits")([score, class_logits])
    if reconstruction_scale:
        reconstruction = layers.Flatten(dtype="float32")(
            _reconstruction_decoder(feature_map, image_shape, reconstruction_scale, opts))
        score = layers.Concatenate(dtype="float32", name="outputs_and_reconstruction")([score, reconstruction])
    return keras.Model(inputs, score, name=f"discriminator_{opts['choice']}")


def reconstruction_shape(discriminator: keras.Model) -> tuple[int, int, int] | None:
    """(height, width, channels) of the images a self-supervised discriminator redraws; None without a decoder."""
    names = {layer.name for layer in discriminator.layers}
    return tuple(discriminator.get_layer("reconstruction").output.shape[1:]) if "reconstruction" in names else None


def _reconstruction_decoder(feature_map, image_shape: tuple, scale: int, opts: dict):
    """FastGAN's decoder: from the last feature map, nearest-neighbour upsampling and a 3x3 conv (channels
    halving, at least 8) up to 1/scale of the image size, then a 3x3 conv to the image channels. Learning to
    redraw real images makes the discriminator keep features that describe them, not only the few that tell
    real from generated, which is what it overfits with on small data."""
    if len(feature_map.shape) != 4:
        raise UserError("reconstruction_weight: an mlp discriminator has no feature map to decode; use "
                        "discriminator.architecture conv or resnet, or set reconstruction_weight 0")
    height, width, channels = image_shape
    map_height, map_width = feature_map.shape[1:3]
    ratio = height // map_height
    if height % map_height or ratio & (ratio - 1) or width != map_width * ratio:
        raise UserError(f"reconstruction_weight: the discriminator's last feature map ({map_height}x{map_width}) "
                        f"does not double up to {height}x{width} px images; use padding 'same' and strides 2, "
                        "or set reconstruction_weight 0")
    if scale > ratio:
        raise UserError(f"reconstruction_scale: {scale} asks for {height // scale} px redrawings, smaller than the "
                        f"discriminator's last feature map ({map_height} px); allowed: up to {ratio}")
    x, filters = feature_map, feature_map.shape[-1]
    for _ in range((ratio // scale).bit_length() - 1):
        filters = max(filters // 2, 8)
        x = hidden(conv(filters, 3, opts)(layers.UpSampling2D()(x)), opts)
    return conv(channels, 3, opts, dtype="float32", name="reconstruction")(x)


def _label_features(labels, num_classes: int, opts: dict, image_shape: tuple, mlp: bool):
    """The label embedding, for conv and resnet networks projected to one extra image plane."""
    label_features = embed(labels, num_classes, opts)
    if mlp:
        return label_features
    height, width, _ = image_shape
    return layers.Reshape((height, width, 1))(dense(height * width, opts)(label_features))


def _projection_score(features, labels, num_classes: int, opts: dict):
    """Dense(1)(h) + <embed(y), h> (Miyato & Koyama 2018). The class vectors are a bias-free Dense on the one-hot
    label, the same as an embedding, so that spectral normalization can wrap them like any Dense."""
    one_hot = layers.CategoryEncoding(num_classes, output_mode="one_hot")(labels)
    class_vectors = dense(features.shape[-1], opts, use_bias=False, name="class_projection")(one_hot)
    match = layers.Dot(axes=1, dtype="float32")([class_vectors, features])
    unconditional = dense(1, opts, dtype="float32", name="unconditional_score")(features)
    return layers.Add(dtype="float32", name="score")([unconditional, match])


def _mlp_body(x, opts: dict, image_shape: tuple, attention: AttentionPlacement):
    for units in opts["widths"]:
        x = drop(hidden(dense(units, opts)(x), opts), opts)
    return x


def _conv_body(x, opts: dict, image_shape: tuple, attention: AttentionPlacement):
    """Convs (the first without normalization, as in DCGAN), each halving the size when strides is 2."""
    widths = opts["widths"]
    if widths is None:
        depth = max(doublings(*image_shape[:2]), 1)
        widths = [min(opts["width"] * 2**index, opts["max_width"]) for index in range(depth)]
    _check_size(image_shape, widths, opts)
    for index, filters in enumerate(widths):
        x = conv(filters, opts["kernel_size"], opts, strides=opts["strides"], padding=opts["padding"])(x)
        x = attention.visit(drop(hidden(x, opts, normalized=index > 0), opts))
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
