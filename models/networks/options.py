"""The network-specific keys of the config's ``generator`` and ``discriminator`` objects.

A network's ``choice`` (gan, dcgan, cgan, wgan, wgan_gp) is a family of defaults, not a separate code path:
every key below can override it, so any generator pairs with any discriminator and a preset can rebuild an
original architecture from keys alone. Keys whose default depends on the choice default to ``null``;
:func:`resolve_options` fills them in from :data:`CHOICE_DEFAULTS`.
"""
from __future__ import annotations

import jsonschema

from infra.cli import UserError

NETWORK_CHOICES = ("gan", "dcgan", "cgan", "wgan", "wgan_gp")

ACTIVATIONS = ("relu", "leaky_relu", "selu", "elu", "gelu")

NETWORK_OPTIONS_SCHEMA: dict = {
    "architecture": {
        "description": "Layer family: 'mlp' (dense layers on flattened images) or 'conv' (strided convolutions). "
        "null: mlp for gan, conv for every other choice.",
        "enum": [None, "mlp", "conv"],
        "default": None,
    },
    "conditional": {
        "description": "Feed the class label in through a learned embedding (needs a labelled dataset). "
        "Generator: the embedding is concatenated to the latent vector. Discriminator: conv - projected to one "
        "extra image plane; mlp - concatenated to the flattened image. null: true for cgan, false otherwise.",
        "type": ["boolean", "null"],
        "default": None,
    },
    "embedding_dim": {
        "description": "Size of the label embedding of a conditional network.",
        "type": "integer",
        "minimum": 1,
        "default": 50,
    },
    "width": {
        "description": "Conv base width (ngf / ndf) used when 'widths' is null: the generator's last hidden layer "
        "has 'width' channels, doubling towards the coarse end; the discriminator's first layer has 'width' "
        "channels, doubling at each downsampling. Capped at 'max_width'.",
        "type": "integer",
        "minimum": 1,
        "default": 64,
    },
    "max_width": {
        "description": "Upper bound on the channels of any automatically sized conv layer.",
        "type": "integer",
        "minimum": 1,
        "default": 512,
    },
    "widths": {
        "description": "Explicit hidden layer sizes, input side first (overrides 'width'). mlp: units of each dense "
        "layer (null: generator [128, 256, 512, 1024], discriminator [512, 256]). conv generator: channels of "
        "each conv after the latent projection; the first ones upsample, as many as the image size needs, the "
        "rest keep the size, and the output conv upsamples too when there are fewer widths than upsamplings. "
        "conv discriminator: channels of each conv.",
        "type": ["array", "null"],
        "items": {"type": "integer", "minimum": 1},
        "default": None,
    },
    "base_size": {
        "description": "Generator, conv: the height the latent projection starts from; the image height must be "
        "base_size * 2^k (k upsamplings). null: the image size halved while the half is a whole number >= 4, "
        "e.g. 7 for 28/56/112 px, 4 for 32/64/128 px.",
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
    },
    "base_width": {
        "description": "Generator, conv: channels of the latent projection at the base size. "
        "null: width * 2^(upsamplings - 1), capped at max_width.",
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
    },
    "upsampling": {
        "description": "Generator, conv: how a layer doubles the size - 'transpose' (stride-2 transposed conv) or "
        "'upsample' (nearest-neighbour upsampling, then a conv).",
        "enum": ["transpose", "upsample"],
        "default": "transpose",
    },
    "kernel_size": {
        "description": "Conv kernel size of the layers that change the image size (discriminator: every conv).",
        "type": "integer",
        "minimum": 1,
        "default": 4,
    },
    "refine_kernel_size": {
        "description": "Generator, conv: kernel size of the convs that keep the size (extra widths and a "
        "non-upsampling output conv). null: kernel_size.",
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
    },
    "strides": {
        "description": "Discriminator, conv: stride of every conv (2 halves the size at each layer).",
        "enum": [1, 2],
        "default": 2,
    },
    "padding": {
        "description": "Discriminator, conv: 'same' or 'valid' (each conv shrinks by kernel_size - 1).",
        "enum": ["same", "valid"],
        "default": "same",
    },
    "normalization": {
        "description": "Normalization after each hidden layer but the discriminator's first and the mlp "
        "generator's first: 'batch', 'layer' or 'none'. wgan_gp critics cannot use 'batch' (the gradient "
        "penalty is per sample). null: batch for generators and dcgan/cgan discriminators, layer for the "
        "wgan_gp critic, none for gan and wgan discriminators.",
        "enum": [None, "batch", "layer", "none"],
        "default": None,
    },
    "batch_norm_momentum": {
        "description": "Momentum of the batch-norm moving statistics (0.9 matches PyTorch's 0.1).",
        "type": "number",
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 1,
        "default": 0.9,
    },
    "activation": {
        "description": f"Hidden activation: one of {', '.join(ACTIVATIONS)}. null: relu for conv generators, "
        "leaky_relu otherwise.",
        "enum": [None, *ACTIVATIONS],
        "default": None,
    },
    "leaky_relu_slope": {
        "description": "Negative slope of leaky_relu.",
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "default": 0.2,
    },
    "dropout": {
        "description": "Dropout rate. Discriminator: after every hidden layer. Generator: after the latent "
        "projection only (as the logo walkthrough did). 0 disables it.",
        "type": "number",
        "minimum": 0,
        "exclusiveMaximum": 1,
        "default": 0.0,
    },
    "output_activation": {
        "description": "Generator: 'tanh' (images in [-1, 1]) or 'sigmoid' (images in [0, 1]); the trainer scales "
        "the data to match.",
        "enum": ["tanh", "sigmoid"],
        "default": "tanh",
    },
    "init_std": {
        "description": "Kernels start from N(0, init_std) as in DCGAN; null keeps Keras' Glorot-uniform default.",
        "type": ["number", "null"],
        "exclusiveMinimum": 0,
        "default": 0.02,
    },
}

# Defaults that depend on the role and the choice; everything else comes from the schema.
CHOICE_DEFAULTS = {
    "generator": {
        "gan": {"architecture": "mlp", "normalization": "batch", "activation": "leaky_relu"},
        "dcgan": {"architecture": "conv", "normalization": "batch", "activation": "relu"},
        "cgan": {"architecture": "conv", "normalization": "batch", "activation": "relu", "conditional": True},
        "wgan": {"architecture": "conv", "normalization": "batch", "activation": "relu"},
        "wgan_gp": {"architecture": "conv", "normalization": "batch", "activation": "relu"},
    },
    "discriminator": {
        "gan": {"architecture": "mlp", "normalization": "none", "activation": "leaky_relu"},
        "dcgan": {"architecture": "conv", "normalization": "batch", "activation": "leaky_relu"},
        "cgan": {"architecture": "conv", "normalization": "batch", "activation": "leaky_relu", "conditional": True},
        "wgan": {"architecture": "conv", "normalization": "none", "activation": "leaky_relu"},
        "wgan_gp": {"architecture": "conv", "normalization": "layer", "activation": "leaky_relu"},
    },
}

MLP_WIDTHS = {"generator": [128, 256, 512, 1024], "discriminator": [512, 256]}

_VALIDATOR = jsonschema.Draft202012Validator({"type": "object", "properties": NETWORK_OPTIONS_SCHEMA})


def _choice(options: dict, role: str) -> str:
    choice = options.get("choice")
    if choice not in NETWORK_CHOICES:
        raise UserError(f"{role}.choice: {choice!r} is not allowed; choose one of {', '.join(NETWORK_CHOICES)}")
    return choice


def resolve_options(options: dict, role: str) -> dict:
    """Every network key with its value for this role and choice; a bad value is a one-line UserError."""
    choice = _choice(options, role)
    for error in _VALIDATOR.iter_errors(options):
        path = ".".join(str(part) for part in (role, *error.absolute_path))
        raise UserError(f"{path}: {error.message}")
    resolved = {key: spec["default"] for key, spec in NETWORK_OPTIONS_SCHEMA.items()}
    resolved["conditional"] = False
    choice_defaults = CHOICE_DEFAULTS[role][choice]
    resolved.update(choice_defaults)
    resolved.update({
        key: value
        for key, value in options.items()
        if key in NETWORK_OPTIONS_SCHEMA and not (value is None and key in (*choice_defaults, "conditional"))
    })
    resolved["choice"] = choice
    if resolved["widths"] is None and resolved["architecture"] == "mlp":
        resolved["widths"] = MLP_WIDTHS[role]
    if resolved["refine_kernel_size"] is None:
        resolved["refine_kernel_size"] = resolved["kernel_size"]
    if role == "discriminator" and choice == "wgan_gp" and resolved["normalization"] == "batch":
        raise UserError(
            "discriminator.normalization: 'batch' is not allowed for a wgan_gp critic (the gradient penalty is "
            "per sample); use 'layer' or 'none'"
        )
    return resolved


def is_conditional(options: dict) -> bool:
    """Whether a generator or discriminator config object takes class labels."""
    conditional = options.get("conditional")
    if conditional is None:
        return options.get("choice") == "cgan"
    return bool(conditional)


def needs_labels(config: dict) -> bool:
    """Whether a resolved run config trains on class labels (either network is conditional)."""
    return is_conditional(config["generator"]) or is_conditional(config["discriminator"])
