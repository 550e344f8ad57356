"""SAGAN self-attention (Zhang et al. 2019) from built-in Keras layers, placed at one configured feature-map height."""
from __future__ import annotations

from keras import layers

from infra.errors import UserError
from models.networks.blocks import conv


def self_attention(x, opts: dict):
    """x + gamma * conv1x1(softmax(query . key^T) . value), gamma per channel and starting at 0, so the block
    starts as the identity and the network learns how much non-local context to mix in."""
    height, width, channels = x.shape[1:]
    key_channels, value_channels = max(channels // 8, 1), max(channels // 2, 1)
    keys_from = x
    if height % 2 == 0 and width % 2 == 0 and min(height, width) >= 8:
        keys_from = layers.MaxPooling2D(2)(x)  # as BigGAN: a quarter of the keys, a quarter of the cost
    key_count = keys_from.shape[1] * keys_from.shape[2]
    projection = lambda filters, name: conv(filters, 1, opts, use_bias=False, name=f"attention_{name}")  # noqa: E731
    query = layers.Reshape((height * width, key_channels))(projection(key_channels, "query")(x))
    key = layers.Reshape((key_count, key_channels))(projection(key_channels, "key")(keys_from))
    value = layers.Reshape((key_count, value_channels))(projection(value_channels, "value")(keys_from))
    attended = layers.Reshape((height, width, value_channels))(layers.Attention()([query, value, key]))
    output = projection(channels, "output")(attended)
    # gamma: a 1x1 depthwise conv is a learned per-channel scale; outside spectral normalization, so it can stay 0.
    scaled = layers.DepthwiseConv2D(1, use_bias=False, depthwise_initializer="zeros", name="attention_gamma")(output)
    return layers.Add()([x, scaled])


class AttentionPlacement:
    """Adds the self-attention block the first time the features reach the configured height, and remembers the
    heights the network passes through, so that a height it never reaches is refused."""

    def __init__(self, opts: dict, role: str):
        self.opts, self.role, self.heights = opts, role, []

    def visit(self, x):
        height = x.shape[1]
        if height == self.opts["self_attention"] and height not in self.heights:
            x = self_attention(x, self.opts)
        self.heights.append(height)
        return x

    def check(self) -> None:
        wanted = self.opts["self_attention"]
        if wanted is not None and wanted not in self.heights:
            allowed = ", ".join(str(height) for height in sorted(set(self.heights)))
            raise UserError(f"{self.role}.self_attention: this {self.role} has no {wanted} px high feature map; "
                            f"allowed: {allowed} (or null)")
