"""Differentiable augmentation (DiffAugment, with ADA's adaptive probability), written once with keras.ops.

The transforms follow DiffAugment's official code (Zhao et al. 2020), generalised from its [-1, 1] images to
any value range: offsets scale with the range's width and uncovered or cut-out pixels get its midpoint (the 0
DiffAugment pads with). Each is differentiable with respect to the images, so the generator learns through it.

The caller draws the randomness: ``uniforms`` holds U(0, 1) numbers, one row per image, laid out per transform
in policy order as [apply, parameters...]:

    color:        apply, brightness, saturation, contrast
    translation:  apply, dx (columns), dy (rows)
    cutout:       apply, centre x (column), centre y (row)
    flip:         apply, side (mirrored when below 0.5)

A transform changes an image iff its apply number is below the probability. Drawing them from the training
step's seed keeps a step a pure function of its inputs, so a resumed run repeats its augmentations exactly.
"""
from __future__ import annotations

from keras import ops

from models.config.augment_schema import AUGMENT_SCHEMA, TRANSFORMS

PARAMETERS = {"color": 3, "translation": 2, "cutout": 2, "flip": 1}


def _check_policy(policy) -> tuple[str, ...]:
    policy = tuple(policy)
    for name in policy:
        if name not in TRANSFORMS:
            raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(TRANSFORMS)}")
    return policy


def uniforms_per_image(policy) -> int:
    """How many U(0, 1) numbers one image needs: per transform, one apply number and its parameters."""
    return sum(1 + PARAMETERS[name] for name in _check_policy(policy))


def _option(options: dict | None, key: str):
    value = (options or {}).get(key)
    return AUGMENT_SCHEMA["properties"][key]["default"] if value is None else value


def _whole_pixels(ratio: float, size: int) -> int:
    # Rounded half up, as DiffAugment's int(size * ratio + 0.5).
    return int(size * ratio + 0.5)


def _per_image(values, dtype):
    return ops.reshape(ops.cast(values, dtype), (-1, 1, 1, 1))


def _color(images, parameters, options, low, high):
    brightness, saturation, contrast = (_per_image(parameters[:, i], images.dtype) for i in range(3))
    images = images + (brightness - 0.5) * ((high - low) / 2.0)
    channel_mean = ops.mean(images, axis=3, keepdims=True)
    images = (images - channel_mean) * (saturation * 2.0) + channel_mean
    image_mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    return (images - image_mean) * (contrast + 0.5) + image_mean


def _axis_view(values, axis):
    # (B, size) per-image values along one image axis, shaped to broadcast against (B, H, W, C).
    return ops.expand_dims(ops.expand_dims(values, 3 - axis), 3)


def _translation(images, parameters, options, low, high):
    ratio = _option(options, "translation_ratio")
    fill = ops.cast((low + high) / 2.0, images.dtype)
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    sources = []
    for axis, u in ((2, parameters[:, 0]), (1, parameters[:, 1])):
        size = images.shape[axis]
        limit = _whole_pixels(ratio, size)
        shift = ops.clip(ops.cast(ops.floor(u * (2 * limit + 1)), "int32"), 0, 2 * limit) - limit
        sources.append(_axis_view(ops.expand_dims(ops.arange(size, dtype="int32"), 0) - ops.expand_dims(shift, 1),
                                  axis)[..., 0])
    source_x, source_y = sources  # (B, 1, W) and (B, H, 1)
    inside = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    # One gather of whole pixels from the flattened batch: one pass over the images where a take_along_axis per
    # axis makes two (docs/speed.md, "Figures quoted from code comments"), and exact, where a shift matrix's
    # matmul may run in reduced precision on accelerators.
    batch_offset = ops.reshape(ops.arange(ops.shape(images)[0], dtype="int32"), (-1, 1, 1)) * (height * width)
    index = batch_offset + ops.clip(source_y, 0, height - 1) * width + ops.clip(source_x, 0, width - 1)
    pixels = ops.take(ops.reshape(images, (-1, channels)), ops.reshape(index, (-1,)), axis=0)
    moved = ops.reshape(pixels, ops.shape(images))
    return ops.where(ops.expand_dims(inside, 3), moved, fill)


def _cutout(images, parameters, options, low, high):
    ratio = _option(options, "cutout_ratio")
    fill = ops.cast((low + high) / 2.0, images.dtype)
    covered = []
    for axis, u in ((2, parameters[:, 0]), (1, parameters[:, 1])):
        size = images.shape[axis]
        side = _whole_pixels(ratio, size)
        # DiffAugment's centres: 0..size-1 for an odd side, 0..size for an even one, so both overlap borders alike.
        centres = size + 1 - side % 2
        centre = ops.clip(ops.cast(ops.floor(u * centres), "int32"), 0, centres - 1)
        start = ops.expand_dims(centre - side // 2, 1)
        position = ops.expand_dims(ops.arange(size, dtype="int32"), 0)
        covered.append(_axis_view(ops.logical_and(position >= start, position < start + side), axis))
    return ops.where(ops.logical_and(*covered), fill, images)


def _flip(images, parameters, options, low, high):
    # A coin of its own: at probability 1 half the images are mirrored, as StyleGAN's --mirror doubles a
    # dataset; mirroring every image would only swap one orientation for the other.
    mirrored = ops.reshape(parameters[:, 0] < 0.5, (-1, 1, 1, 1))
    return ops.where(mirrored, ops.flip(images, axis=2), images)


_TRANSFORM_OPS = {"color": _color, "translation": _translation, "cutout": _cutout, "flip": _flip}


def augment(images, uniforms, probability, policy, options, value_range=(-1.0, 1.0)):
    """``images`` (B, H, W, C) with each transform of ``policy`` applied to each image where its apply number
    in ``uniforms`` (B, uniforms_per_image(policy)) is below ``probability`` (a float or a 0-d tensor, which
    may be traced). ``options`` is the config's ``augment`` object; missing ratios take their defaults."""
    policy = _check_policy(policy)
    images = ops.convert_to_tensor(images)
    if not policy:
        return images
    if len(images.shape) != 4 or images.shape[1] is None or images.shape[2] is None:
        raise ValueError(f"images must be (batch, height, width, channels) with a known size; got {images.shape}")
    uniforms = ops.convert_to_tensor(uniforms, "float32")
    expected = uniforms_per_image(policy)
    if uniforms.shape[-1] is not None and uniforms.shape[-1] != expected:
        raise ValueError(f"policy {list(policy)} needs {expected} uniforms per image; got {uniforms.shape[-1]}")
    probability = ops.cast(probability, "float32")
    low, high = (float(bound) for bound in value_range)
    column = 0
    for name in policy:
        count = PARAMETERS[name]
        applied = ops.reshape(uniforms[:, column] < probability, (-1, 1, 1, 1))
        transformed = _TRANSFORM_OPS[name](images, uniforms[:, column + 1:column + 1 + count], options, low, high)
        images = ops.where(applied, transformed, images)
        column += 1 + count
    return images


def sign_mean(real_scores):
    """ADA's overfitting measure r_t = E[sign D(real)] over a batch of the discriminator's real scores."""
    return ops.mean(ops.sign(ops.cast(real_scores, "float32")))


def adjust_probability(probability, real_sign_mean, batch_size, options):
    """ADA's update: the probability moves by batch_size / (adjust_kimg * 1000) towards making r_t reach the
    target (up when r_t > target, down when below, unchanged when equal), kept within [0, 1]."""
    step = ops.cast(batch_size, "float32") / (float(_option(options, "adjust_kimg")) * 1000.0)
    direction = ops.sign(ops.cast(real_sign_mean, "float32") - float(_option(options, "target")))
    return ops.clip(ops.cast(probability, "float32") + direction * step, 0.0, 1.0)
