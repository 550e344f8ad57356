"""Networks, optimizers and the GAN, built from a resolved config (shared by training and generation).

The config is read as :func:`models.config.resolve` left it: every option is there with the value the run uses,
so nothing here supplies a default."""
from __future__ import annotations

from contextlib import contextmanager

import keras

from models.gan import GAN
from models.networks.discriminator import build_discriminator as build_discriminator_network
from models.networks.discriminator import reconstruction_shape
from models.networks.generator import build_generator as build_generator_network


def num_classes(config: dict) -> int | None:
    return len(config["class_names"]) if config["class_names"] else None


def output_activation(config: dict) -> str:
    return config["generator"]["output_activation"]


@contextmanager
def precision_policy(config: dict):
    """Layers built inside compute in the config's precision; their weights stay float32 (Keras' mixed
    policies), so the optimizer state and the EMA average are float32 too."""
    precision = config["precision"]
    if precision == "float32":
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(f"mixed_{precision}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_generator(config: dict) -> keras.Model:
    conditional = config["generator"]["conditional"]
    with precision_policy(config):
        return build_generator_network(config["generator"], tuple(config["image_shape"]), config["latent_dim"],
                                       num_classes(config) if conditional else None)


def class_logit_count(config: dict) -> int | None:
    """How many logits the auxiliary classifier gives: one per class (AC-GAN), or one per class and origin,
    real then generated (ADC-GAN); None without one."""
    if not config["class_loss_weight"]:
        return None
    return num_classes(config) * (2 if config["class_loss_type"] == "adc" else 1)


def reconstruction_scale(config: dict) -> int | None:
    """How much smaller than the images a self-supervised discriminator redraws them; None without one."""
    return config["reconstruction_scale"] if config["reconstruction_weight"] else None


def build_discriminator(config: dict) -> keras.Model:
    conditional = config["discriminator"]["conditional"]
    with precision_policy(config):
        return build_discriminator_network(config["discriminator"], tuple(config["image_shape"]),
                                           num_classes(config) if conditional else None,
                                           class_logit_count(config),
                                           reconstruction_scale=reconstruction_scale(config))


def build_optimizer(options: dict, model: keras.Model, precision: str = "float32") -> keras.optimizers.Optimizer:
    """The optimizer for ``model``, built now so a checkpoint can be restored into its variables; float16
    training wraps it in dynamic loss scaling (bfloat16 has float32's range and needs none)."""
    if options["choice"] == "adam":
        optimizer = keras.optimizers.Adam(options["learning_rate"], beta_1=options["beta_1"],
                                          beta_2=options["beta_2"])
    else:
        optimizer = keras.optimizers.RMSprop(options["learning_rate"])
    if precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


def build_generator_ema(config: dict, generator: keras.Model) -> keras.Model | None:
    """The EMA copy of ``generator`` (same architecture, same starting weights), or None without ema_kimg."""
    if config["ema_kimg"] is None:
        return None
    average = build_generator(config)
    for kept, value in zip(average.variables, generator.variables):
        kept.assign(value)
    return average


def build_gan(config: dict) -> tuple[GAN, keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
    generator, discriminator = build_generator(config), build_discriminator(config)
    gan = GAN(
        generator=generator,
        discriminator=discriminator,
        latent_dim=config["latent_dim"],
        generator_conditional=config["generator"]["conditional"],
        discriminator_conditional=config["discriminator"]["conditional"],
        loss=config["loss"],
        label_smoothing=config["label_smoothing"],
        n_critic=config["n_critic"],
        clip_value=config["clip_value"],
        lambda_gp=config["lambda_gp"],
        batch_size=config["batch_size"],
        value_range=(-1.0, 1.0) if output_activation(config) == "tanh" else (0.0, 1.0),
        augment_options=config["augment"],
        r1_gamma=config["r1_gamma"],
        r1_interval=config["r1_interval"],
        lecam_weight=config["lecam_weight"],
        lecam_decay=config["lecam_decay"],
        top_k_fraction=config["top_k_fraction"],
        class_loss_weight=config["class_loss_weight"],
        class_loss_type=config["class_loss_type"],
        reconstruction_weight=config["reconstruction_weight"],
        reconstruction_shape=reconstruction_shape(discriminator),
        ema=config["ema_kimg"] is not None,
    )
    precision = config["precision"]
    generator_optimizer = build_optimizer(config["generator"]["optimizer"], generator, precision)
    discriminator_optimizer = build_optimizer(config["discriminator"]["optimizer"], discriminator, precision)
    return gan, generator_optimizer, discriminator_optimizer
