"""GAN losses on raw discriminator scores (logits), written once with keras.ops for every backend.

Each loss is a pair: what the discriminator minimises given scores of real and generated images, and
what the generator minimises given scores of generated images.
"""
from __future__ import annotations

from keras import ops

LOSSES = ("bce", "wasserstein", "hinge", "lsgan")


def _bce_with_logits(logits, targets):
    # Stable binary cross-entropy on logits: softplus(x) - t * x == -t log σ(x) - (1 - t) log(1 - σ(x)).
    return ops.mean(ops.softplus(logits) - targets * logits)


def discriminator_loss(name: str, real_scores, fake_scores, label_smoothing: float = 0.0):
    if name == "bce":
        # One-sided smoothing: only the real targets move (to 1 - s); fake targets stay 0.
        real_labels = ops.full_like(real_scores, 1.0 - label_smoothing)
        fake_labels = ops.zeros_like(fake_scores)
        return _bce_with_logits(real_scores, real_labels) + _bce_with_logits(fake_scores, fake_labels)
    if name == "wasserstein":
        return ops.mean(fake_scores) - ops.mean(real_scores)
    if name == "hinge":
        return ops.mean(ops.relu(1.0 - real_scores)) + ops.mean(ops.relu(1.0 + fake_scores))
    if name == "lsgan":
        return 0.5 * ops.mean(ops.square(real_scores - 1.0)) + 0.5 * ops.mean(ops.square(fake_scores))
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")


def generator_loss(name: str, fake_scores):
    if name == "bce":
        # Non-saturating: the generator wants its images called real.
        misleading_labels = ops.ones_like(fake_scores)
        return _bce_with_logits(fake_scores, misleading_labels)
    if name in ("wasserstein", "hinge"):
        return -ops.mean(fake_scores)
    if name == "lsgan":
        return 0.5 * ops.mean(ops.square(fake_scores - 1.0))
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")


def top_k_scores(fake_scores, count: int):
    """The ``count`` highest of a batch's (B, 1) scores of generated images, as (count, 1): top-k training
    (Sinha et al. 2020) computes the generator's loss on the images the discriminator finds most real, whose
    gradients point towards the data, and drops the worst, whose gradients are the least useful."""
    return ops.expand_dims(ops.top_k(ops.reshape(fake_scores, (-1,)), count)[0], -1)


def interpolate(real_images, fake_images, mixing_weights):
    """Points between real and fake images; ``mixing_weights`` is one U(0, 1) number per sample, (B, 1, 1, 1)."""
    return mixing_weights * real_images + (1.0 - mixing_weights) * fake_images


def gradient_penalty(gradients):
    """Mean over samples of (‖∇D(x̂)‖₂ − 1)², each norm taken over all of a sample's pixels and channels."""
    per_sample_squares = ops.sum(ops.square(gradients), axis=tuple(range(1, len(gradients.shape))))
    norms = ops.sqrt(per_sample_squares + 1e-12)
    return ops.mean(ops.square(norms - 1.0))


def clip_weights(values, clip_value: float):
    """The weight clipping of the original WGAN: every critic weight into [-clip_value, clip_value]."""
    return [ops.clip(value, -clip_value, clip_value) for value in values]


def r1_penalty(gradients):
    """R1 (Mescheder et al. 2018): mean over real samples of ‖∇D(x)‖², zero-centred; the caller weights it
    γ/2."""
    return ops.mean(ops.sum(ops.square(gradients), axis=tuple(range(1, len(gradients.shape)))))


def lecam_regularizer(real_scores, fake_scores, real_score_average, fake_score_average):
    """LeCam (Tseng et al. 2021): keep real scores from running above the fakes' moving average, and fakes'
    below the reals'; bounds how far apart an overfitting discriminator can push them on little data."""
    return (ops.mean(ops.square(ops.relu(real_scores - fake_score_average)))
            + ops.mean(ops.square(ops.relu(real_score_average - fake_scores))))


def reconstruction_loss(reconstructions, images):
    """Mean squared error of a self-supervised discriminator's redrawing (B, h, w, C) against the images it saw,
    average-pooled to its size (FastGAN; its perceptual distance would need a pretrained network)."""
    factor = images.shape[1] // reconstructions.shape[1]
    if factor > 1:
        images = ops.average_pool(images, pool_size=factor, strides=factor, padding="valid")
    return ops.mean(ops.square(reconstructions - images))


def class_loss(class_logits, labels):
    """Mean cross-entropy of class logits (B, classes) against int labels (B,): AC-GAN's auxiliary loss."""
    return ops.mean(ops.sparse_categorical_crossentropy(labels, class_logits, from_logits=True))


def adc_discriminator_class_loss(real_logits, real_labels, fake_logits, fake_labels):
    """ADC-GAN (Hou et al. 2022): logits (B, 2·classes) name real class k as k and generated class k as
    classes + k; the classifier learns both."""
    classes = real_logits.shape[-1] // 2
    return class_loss(real_logits, real_labels) + class_loss(fake_logits, fake_labels + classes)


def adc_generator_class_loss(fake_logits, fake_labels):
    """ADC-GAN's generator term: be taken for real class k and not for generated class k."""
    classes = fake_logits.shape[-1] // 2
    return class_loss(fake_logits, fake_labels) - class_loss(fake_logits, fake_labels + classes)


def multiclass_hinge_loss(class_logits, labels, margin: float = 1.0):
    """Crammer and Singer's multi-class hinge: mean of max(0, margin - (logit of the label - the largest other
    logit)). Unlike the cross-entropy, it stops pulling once the label leads by the margin, so a generator
    trained on it gains nothing from making its images ever more confidently of their class."""
    classes = class_logits.shape[-1]
    is_label = ops.one_hot(ops.cast(labels, "int32"), classes)
    label_logit = ops.sum(class_logits * is_label, axis=-1)
    other_logit = ops.max(class_logits - 1e9 * is_label, axis=-1)
    return ops.mean(ops.relu(margin - (label_logit - other_logit)))


def discriminator_class_loss(kind: str, real_logits, real_labels, fake_logits, fake_labels):
    """The auxiliary classifier's term in the discriminator's loss, by ``class_loss_type``."""
    if kind == "adc":
        return adc_discriminator_class_loss(real_logits, real_labels, fake_logits, fake_labels)
    # AC-GAN's classifier learns from real images only: taught the generator's mistakes as well, it would
    # reward them (as in StudioGAN's AC-GAN).
    if kind == "hinge":
        return multiclass_hinge_loss(real_logits, real_labels)
    return class_loss(real_logits, real_labels)


def generator_class_loss(kind: str, fake_logits, fake_labels):
    """The auxiliary classifier's term in the generator's loss: its images taken for the class asked for."""
    if kind == "adc":
        return adc_generator_class_loss(fake_logits, fake_labels)
    if kind == "hinge":
        return multiclass_hinge_loss(fake_logits, fake_labels)
    return class_loss(fake_logits, fake_labels)
