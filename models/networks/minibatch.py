"""The minibatch standard deviation of ProGAN and StyleGAN (Karras et al. 2018, 2020), for discriminators.

A generator that draws nearly the same image for every latent vector looks real image by image; a discriminator
that sees how much the images of a small group differ can tell, so the generator gets a gradient towards variety.
"""
from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="logogan")
class MinibatchStd(layers.Layer):
    """(B, H, W, C) feature maps -> (B, H, W, C + 1): one more channel holding, for each image, the standard
    deviation of the features across its group of ``group_size`` images, averaged over features and pixels.

    Groups take every (B / group_size)-th image, as StyleGAN's. A batch that ``group_size`` does not divide uses
    the largest group size under it that does (1: a constant channel), so any batch works and none is refused."""

    def __init__(self, group_size: int, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def call(self, x):
        batch = x.shape[0]
        group = self.group_size if batch is None else group_size_for(batch, self.group_size)
        height, width, channels = x.shape[1:]
        values = ops.reshape(ops.cast(x, "float32"), (group, -1, height, width, channels))
        deviation = ops.sqrt(ops.var(values, axis=0) + 1e-8)  # (B / group, H, W, C)
        deviation = ops.mean(deviation, axis=(1, 2, 3), keepdims=True)  # (B / group, 1, 1, 1)
        # Image g x (B / group) + m is member g of group m, so the groups' values repeat group times in order.
        feature = ops.tile(deviation, (group, height, width, 1))
        return ops.concatenate([x, ops.cast(feature, x.dtype)], axis=-1)


def group_size_for(batch: int, group_size: int) -> int:
    """The largest group size up to ``group_size`` that divides ``batch``."""
    return next(size for size in range(min(group_size, batch), 0, -1) if batch % size == 0)
