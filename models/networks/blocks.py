"""Layer helpers shared by the generators and discriminators (keras.layers only, so any backend runs them and a
saved generator loads with plain Keras)."""
from __future__ import annotations

import keras
from keras import layers

from infra.errors import UserError


def kernel_initializer(std: float | None):
    """A fresh initializer per layer: one seeded instance reused would give every layer the same kernel."""
    return "glorot_uniform" if std is None else keras.initializers.RandomNormal(mean=0.0, stddev=std)


def spectral(layer: layers.Layer, opts: dict) -> layers.Layer:
    """``layer`` wrapped in spectral normalization when the network asks for it."""
    if not opts["spectral_norm"]:
        return layer
    return layers.SpectralNormalization(layer, dtype=layer.dtype_policy)


def dense(units: int, opts: dict, **kwargs) -> layers.Layer:
    return spectral(layers.Dense(units, kernel_initializer=kernel_initializer(opts["init_std"]), **kwargs), opts)


def conv(filters: int, kernel: int, opts: dict, *, strides=1, padding="same", transpose=False, **kwargs):
    layer = layers.Conv2DTranspose if transpose else layers.Conv2D
    return spectral(layer(filters, kernel, strides=strides, padding=padding,
                          kernel_initializer=kernel_initializer(opts["init_std"]), **kwargs), opts)


def normalize(x, opts: dict):
    """Batch norm (class-conditional when the generator is conditioned through it), layer norm over all of a
    sample's features, or nothing, as configured."""
    if opts["normalization"] == "batch":
        if opts.get("batch_norm_labels") is not None:
            return conditional_batch_norm(x, *opts["batch_norm_labels"], opts)
        return layers.BatchNormalization(momentum=opts["batch_norm_momentum"])(x)
    if opts["normalization"] == "layer":
        return layers.LayerNormalization(axis=list(range(1, len(x.shape))))(x)
    return x


def conditional_batch_norm(x, labels, num_classes: int, opts: dict):
    """Batch norm whose scale and shift are looked up per class: x_hat * gamma_y + beta_y (de Vries et al. 2017,
    as in SNGAN and BigGAN), gamma starting at 1 and beta at 0 so it starts as plain batch norm."""
    channels = x.shape[-1]
    x = layers.BatchNormalization(momentum=opts["batch_norm_momentum"], center=False, scale=False)(x)
    per_class = {}
    for name, initializer in (("gamma", "ones"), ("beta", "zeros")):
        values = layers.Embedding(num_classes, channels, embeddings_initializer=initializer)(labels)
        if len(x.shape) > 2:  # (B, C) -> (B, 1, 1, C), to broadcast over the feature map
            values = layers.Reshape((1,) * (len(x.shape) - 2) + (channels,))(values)
        per_class[name] = values
    return layers.Add()([layers.Multiply()([x, per_class["gamma"]]), per_class["beta"]])


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


def upsamplings(base_size: int | None, height: int, width: int) -> int:
    """How many doublings take the generator from its base size to the image size."""
    if base_size is None:
        return doublings(height, width)
    ratio = height // base_size
    if height % base_size or ratio & (ratio - 1) or width % ratio:
        raise UserError(
            f"generator.base_size: {base_size} does not double up to {height}x{width} px images; use a size whose "
            "doublings reach the image height (e.g. 7 or 14 for 56 px), or null to choose it from the image"
        )
    return ratio.bit_length() - 1


def palette_skipped_doublings(opts: dict, doubling_count: int, height: int, width: int) -> int:
    """How many of the generator's last doublings a palette_scale leaves to the palette's smooth upsampling."""
    skipped = opts["palette_scale"].bit_length() - 1  # options refuse a palette_scale without a palette
    if skipped > doubling_count:
        raise UserError(f"generator.palette_scale: {opts['palette_scale']} leaves out more doublings than the "
                        f"{doubling_count} from the base size to {height}x{width} px; use a smaller palette_scale")
    return skipped


def auto_width(depth: int, opts: dict) -> int:
    """Channels of an automatically sized conv layer ``depth`` doublings from 'width', capped at 'max_width'."""
    return min(opts["width"] * 2**depth, opts["max_width"])
