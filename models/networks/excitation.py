"""FastGAN's skip-layer excitation (Liu et al. 2021) from built-in Keras layers, for conv and resnet generators."""
from __future__ import annotations

from keras import layers

from infra.errors import UserError
from models.networks.blocks import dense

# How much larger the gated map is than the map that gates it. FastGAN pairs 8 with 128 px on 1024 px images;
# a 56 or 64 px generator has few enough maps that four times (7 -> 28, 4 -> 16, 8 -> 32) is the useful reach.
REACH = 4


def skip_excitation(x, source, opts: dict):
    """x * sigmoid(f(source)) per channel: the coarse map steers the fine one's channels, a short gradient path
    from the output back to the coarse layers. FastGAN pools the source to 4x4 and applies a 4x4 conv, a
    LeakyReLU(0.1) and a 1x1 conv; a Dense on the pooled, flattened map is that 4x4 conv."""
    channels = x.shape[-1]
    pool = -(-source.shape[1] // 4)  # ceil, so the pooled map is at most 4x4 (7x7 -> 4x4 with 'same' padding)
    if pool > 1:
        source = layers.AveragePooling2D(pool, padding="same")(source)
    gate = layers.LeakyReLU(negative_slope=0.1)(dense(channels, opts)(layers.Flatten()(source)))
    gate = layers.Activation("sigmoid")(dense(channels, opts)(gate))
    return layers.Multiply()([x, layers.Reshape((1, 1, channels))(gate)])


class FeatureMapHooks:
    """What a generator body does to each feature map it :meth:`visit`s, in order: with 'skip_excitation', a map
    REACH times as high as an earlier one is gated by it; then the self-attention placement sees it."""

    def __init__(self, opts: dict, attention):
        self.opts, self.attention = opts, attention
        self.first_by_height, self.excited = {}, 0

    def visit(self, x):
        height = x.shape[1]
        source = self.first_by_height.get(height // REACH) if height % REACH == 0 else None
        if self.opts["skip_excitation"] and source is not None and height not in self.first_by_height:
            x = skip_excitation(x, source, self.opts)
            self.excited += 1
        self.first_by_height.setdefault(height, x)
        return self.attention.visit(x)

    def check(self) -> None:
        self.attention.check()
        if self.opts["skip_excitation"] and not self.excited:
            heights = ", ".join(str(height) for height in sorted(self.first_by_height))
            raise UserError(f"generator.skip_excitation: this generator's feature maps ({heights} px high) have no "
                            f"pair {REACH} times apart to link; set skip_excitation false, or use a smaller "
                            "base_size or palette_scale")
