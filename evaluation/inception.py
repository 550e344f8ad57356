"""The FID Inception-v3 (TensorFlow graph of 2015-12-05) rebuilt in Keras 3 from its TorchScript archive.

Published FID numbers come from this exact network, input resize and scaling; any other variant (for
example ``keras.applications.InceptionV3``, which pools differently in the last blocks) gives numbers that
cannot be compared with papers. The structure below follows the archive's TorchScript source
(``code/__torch__/inceptionv3.py``) block by block; layer sizes, strides and paddings are read from the
archive itself. Every layer is float32 whatever the global mixed-precision policy says, and only
``keras.layers``/``keras.ops`` are used, so it runs on TensorFlow and JAX alike.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from evaluation.torchscript import ScriptModule, read_torchscript
from infra.errors import UserError

FEATURE_DIM = 2048
INPUT_SIZE = 299
FLOAT = "float32"
BATCH_NORM_EPSILON = 0.001  # Conv2dLayer.forward: batch_norm(..., eps=0.001), no scale, only beta
INPUT_TOP = 0.9921875  # the graph's input range is [-1, 0.9921875]

# Pooling modules carry their settings as TorchScript constants in the code, not in the pickle:
# type name -> (kind, kernel, stride, "valid"|"same"). AvgPool2d has count_include_pad=False, which is
# what Keras "same" average pooling computes.
POOLING = {
    "torch.nn.modules.pooling.MaxPool2d": ("max", 3, 2, "valid"),
    "torch.nn.modules.pooling.AvgPool2d": ("average", 3, 1, "same"),
    "torch.nn.modules.pooling.___torch_mangle_6.MaxPool2d": ("max", 3, 1, "same"),
    "torch.nn.modules.pooling.___torch_mangle_8.AvgPool2d": ("average", 8, 8, "valid"),
}


def legacy_resize_matrix(source: int, target: int = INPUT_SIZE) -> np.ndarray:
    """(target, source) weights of TF1's legacy bilinear resize along one axis.

    Output index i samples the input at ``i * source / target`` (no half-pixel centres), blending
    ``floor`` and ``floor + 1`` with the latter clamped to the last index.
    """
    position = np.arange(target, dtype=np.float64) * source / target
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, source - 1)
    fraction = position - lower
    matrix = np.zeros((target, source), dtype=np.float64)
    np.add.at(matrix, (np.arange(target), lower), 1.0 - fraction)
    np.add.at(matrix, (np.arange(target), upper), fraction)
    return matrix.astype(np.float32)


class LegacyResizeAndScale(layers.Layer):
    """uint8-valued images (N, H, W, 1|3) -> the network input: 299×299×3 in [-1, 0.9921875].

    The resize is two fixed matrix products, which is exactly TF1's legacy bilinear map and is fast on
    every backend; grey images are repeated to three channels after resizing (the same thing, cheaper).
    """

    def __init__(self, source_height: int, source_width: int, channels: int, **kwargs):
        super().__init__(dtype=FLOAT, **kwargs)
        self.rows = legacy_resize_matrix(source_height)
        self.columns = legacy_resize_matrix(source_width)
        self.channels = channels

    def call(self, images):
        x = ops.einsum("ih,nhwc->niwc", ops.convert_to_tensor(self.rows), images)
        x = ops.einsum("jw,niwc->nijc", ops.convert_to_tensor(self.columns), x)
        if self.channels == 1:
            x = ops.repeat(x, 3, axis=-1)
        return ops.clip(x / 255.0 * (INPUT_TOP + 1.0) - 1.0, -1.0, INPUT_TOP)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], INPUT_SIZE, INPUT_SIZE, 3)


def _pairs(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _conv_bn_relu(node: ScriptModule, x, name: str):
    """Conv2dLayer: conv (no bias) -> batch norm (beta only, eps 0.001) -> ReLU, with the norm folded in."""
    weight = np.asarray(node["weight"], dtype=np.float64)  # (out, in, kh, kw)
    scale = 1.0 / np.sqrt(np.asarray(node["var"], dtype=np.float64) + BATCH_NORM_EPSILON)
    kernel = (weight * scale[:, None, None, None]).transpose(2, 3, 1, 0)  # -> (kh, kw, in, out)
    bias = np.asarray(node["beta"], dtype=np.float64) - np.asarray(node["mean"], dtype=np.float64) * scale
    kernel_size = kernel.shape[:2]
    stride = int(node["stride"])
    pad = _pairs(node["padding"])
    if pad == (0, 0):
        padding = "valid"
    elif stride == 1 and pad == ((kernel_size[0] - 1) // 2, (kernel_size[1] - 1) // 2):
        padding = "same"  # odd kernel, stride 1: Keras "same" pads exactly these amounts
    else:
        x = layers.ZeroPadding2D(pad, dtype=FLOAT, name=f"{name}_pad")(x)
        padding = "valid"
    # Zero initialisers: the weights are set right after, and random ones cost a compile per shape on JAX.
    conv = layers.Conv2D(kernel.shape[-1], kernel_size, strides=stride, padding=padding, activation="relu",
                         kernel_initializer="zeros", dtype=FLOAT, name=name)
    x = conv(x)
    conv.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return x


def _pool(node: ScriptModule, x, name: str):
    if node.type_name not in POOLING:
        raise UserError(f"unknown pooling module {node.type_name} in the FID network archive")
    kind, kernel, stride, padding = POOLING[node.type_name]
    pool_layer = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
    return pool_layer(kernel, strides=stride, padding=padding, dtype=FLOAT, name=name)(x)


def _apply(node: ScriptModule, x, name: str):
    """Apply one module of the tree, dispatching on its TorchScript class as its ``forward`` does."""
    kind = node.type_name.rsplit(".", 1)[-1]
    if kind == "Conv2dLayer":
        return _conv_bn_relu(node, x, name)
    if kind in ("MaxPool2d", "AvgPool2d"):
        return _pool(node, x, name)
    if kind == "Sequential":
        for child_name, child in node.children().items():
            x = _apply(child, x, f"{name}_{child_name}")
        return x
    if kind in BLOCKS:
        return BLOCKS[kind](node, x, name)
    raise UserError(f"unknown module {node.type_name} in the FID network archive")


def _concat_branches(node: ScriptModule, x, name: str, branches: tuple[str, ...]):
    outputs = [_apply(node[branch], x, f"{name}_{branch}") for branch in branches]
    return layers.Concatenate(axis=-1, dtype=FLOAT, name=name)(outputs)


def _inception_e(node: ScriptModule, x, name: str):
    """InceptionE.forward: two towers split into 1×3 and 3×1 halves; the pool differs between mixed_9/10."""
    a = _apply(node["tower_conv"], x, f"{name}_tower_conv")
    b = _apply(node["tower_1_conv_1"], _apply(node["tower_1_conv"], x, f"{name}_tower_1_conv"), f"{name}_tower_1_conv_1")
    pooled = _apply(node["tower_2_pool"], x, f"{name}_tower_2_pool")
    outputs = [
        _apply(node["conv"], x, f"{name}_conv"),
        _apply(node["tower_mixed_conv"], a, f"{name}_tower_mixed_conv"),
        _apply(node["tower_mixed_conv_1"], a, f"{name}_tower_mixed_conv_1"),
        _apply(node["tower_1_mixed_conv"], b, f"{name}_tower_1_mixed_conv"),
        _apply(node["tower_1_mixed_conv_1"], b, f"{name}_tower_1_mixed_conv_1"),
        _apply(node["tower_2_conv"], pooled, f"{name}_tower_2_conv"),
    ]
    return layers.Concatenate(axis=-1, dtype=FLOAT, name=name)(outputs)


# Branch order of each block's torch.cat, as in its forward().
BLOCKS = {
    "InceptionA": lambda node, x, name: _concat_branches(node, x, name, ("conv", "tower", "tower_1", "tower_2")),
    "InceptionB": lambda node, x, name: _concat_branches(node, x, name, ("conv", "tower", "pool")),
    "InceptionC": lambda node, x, name: _concat_branches(node, x, name, ("conv", "tower", "tower_1", "tower_2")),
    "InceptionD": lambda node, x, name: _concat_branches(node, x, name, ("tower", "tower_1", "pool")),
    "InceptionE": _inception_e,
}


def build_inception(weights_path: str | Path) -> keras.Model:
    """The network from a 299×299×3 input in [-1, 0.9921875] to 2048-d pool features, weights loaded."""
    tree = read_torchscript(weights_path)
    try:
        layer_tree = tree["net"]["layers"]
    except (KeyError, AttributeError):
        raise UserError(f"{weights_path}: not the FID Inception archive (no net.layers module)") from None
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), dtype=FLOAT, name="fid_input")
    x = _apply(layer_tree, inputs, "inception")
    features = layers.Flatten(dtype=FLOAT, name="pool_features")(x)
    if features.shape[-1] != FEATURE_DIM:
        raise UserError(f"{weights_path}: the network gives {features.shape[-1]} features; expected {FEATURE_DIM}")
    return keras.Model(inputs, features, name="fid_inception_2015_12_05")
