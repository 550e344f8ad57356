"""Every default that depends on another option, in one place; the fixed defaults are the schema's own
(``"default"`` of each option in :mod:`models.config.schema`, :mod:`models.config.network_schema` and
:mod:`models.config.augment_schema`). :func:`models.config.resolve` applies both, so a run's config.json holds
each value as the run used it and the builders read it as it is."""
from __future__ import annotations

# The training regime each original model was published with, by discriminator choice.
REGIMES = {
    "wgan": {"loss": "wasserstein", "n_critic": 5, "clip_value": 0.01, "lambda_gp": 0.0,
             "optimizer": {"choice": "rmsprop", "learning_rate": 5e-5}},
    "wgan_gp": {"loss": "wasserstein", "n_critic": 5, "clip_value": 0.0, "lambda_gp": 10.0,
                "optimizer": {"choice": "adam", "learning_rate": 1e-4, "beta_1": 0.5, "beta_2": 0.9}},
}
DEFAULT_REGIME = {"loss": "bce", "n_critic": 1, "clip_value": 0.0, "lambda_gp": 0.0,
                  "optimizer": {"choice": "adam", "learning_rate": 2e-4, "beta_1": 0.5, "beta_2": 0.999}}
ADAM_ONLY_KEYS = ("beta_1", "beta_2")

# Network options that depend on the role and the choice.
CHOICE_DEFAULTS = {
    "generator": {
        "gan": {"architecture": "mlp", "normalization": "batch", "activation": "leaky_relu"},
        "dcgan": {"architecture": "conv", "normalization": "batch", "activation": "relu"},
        "cgan": {"architecture": "conv", "normalization": "batch", "activation": "relu"},
        "wgan": {"architecture": "conv", "normalization": "batch", "activation": "relu"},
        "wgan_gp": {"architecture": "conv", "normalization": "batch", "activation": "relu"},
    },
    "discriminator": {
        "gan": {"architecture": "mlp", "normalization": "none", "activation": "leaky_relu"},
        "dcgan": {"architecture": "conv", "normalization": "batch", "activation": "leaky_relu"},
        "cgan": {"architecture": "conv", "normalization": "batch", "activation": "leaky_relu"},
        "wgan": {"architecture": "conv", "normalization": "none", "activation": "leaky_relu"},
        "wgan_gp": {"architecture": "conv", "normalization": "layer", "activation": "leaky_relu"},
    },
}
# The choices whose networks take class labels unless told otherwise (``conditional``).
CONDITIONAL_CHOICES = ("cgan",)

# Network options that follow the architecture rather than the choice: SNGAN and BigGAN's residual networks use
# ReLU throughout and no normalization in the discriminator.
ARCHITECTURE_DEFAULTS = {
    "resnet": {"generator": {"activation": "relu"}, "discriminator": {"activation": "relu", "normalization": "none"}},
}
DEFAULT_CONDITIONING = "concat"

# ``widths`` where the image size does not set them: the dense layers of an mlp network, and those before the
# parts of a shapes or vector generator.
MLP_WIDTHS = {"generator": [128, 256, 512, 1024], "discriminator": [512, 256]}
DRAWN_WIDTHS = [256, 256]
DRAWN_ARCHITECTURES = ("shapes", "vector")

# generator.palette "auto" (architecture vector): this many entries when most images are one colour on their
# background, and this many when at least MULTI_COLOUR_SHARE of them have a mark of two or more colours (a built
# generator with the option still unsettled, as bench scripts build presets without data, takes the second).
AUTO_PALETTE_SINGLE = 2
AUTO_PALETTE_MULTI = 4
MULTI_COLOUR_SHARE = 0.25

# The vector generator's parts, in painter's order.
VECTOR_PARTS = ["box", "path", "path", "stroke", "box", "path", "stroke", "path"]

# The options whose null, after resolution, is itself the setting and not a value still to be chosen: each with
# what null means. Anything else that resolves to null is a default missing from this package.
NULL_IS_A_SETTING = {
    "data_path": "set by --data",
    "data_dir": "no local copy of a named dataset",
    "image_size": "the data's own size",
    "ema_kimg": "no moving average",
    "ema_rampup": "no ramp-up",
    "steps": "the run is sized by epochs",
    "epochs": "the run is sized by steps",
    "time_limit_minutes": "no limit",
    "sample_minutes": "grids every sample_interval steps",
    "checkpoint_minutes": "checkpoints every checkpoint_interval steps",
    "steps_per_call": "chosen by the trainer for the device it finds",
    "keep_every": "no extra checkpoints",
    "name": "named by the trainer when it starts",
    "image_shape": "set by the trainer from the data",
    "trained_on": "set by the trainer from its devices",
    "class_names": "set by the trainer; null: the data has no classes or no network is conditional",
    "data_clusters": "no clusters: the data's own labels, if any",
    "class_shares": "set by the trainer; null: samples draw the classes in turn",
    "*.self_attention": "no attention block",
    "*.edge_px_start": "edges at edge_px from the first step",
    "*.palette": "no palette: pixel values directly",
    "*.palette_background": "every palette entry chosen per image",
    "*.init_std": "Keras' Glorot-uniform initializer",
    "*.widths": "conv and resnet networks: sized from the image by width and max_width",
    "*.base_size": "sized from the image",
    "*.base_width": "sized from width and the image",
    "*.optimizer.beta_1": "rmsprop: no moment decays",
    "*.optimizer.beta_2": "rmsprop: no moment decays",
}
