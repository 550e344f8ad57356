"""Resolving the network keys of the config's ``generator`` and ``discriminator`` objects for one network.

A network's ``choice`` (gan, dcgan, cgan, wgan, wgan_gp) is a family of defaults, not a separate code path:
every key of :data:`NETWORK_OPTIONS_SCHEMA` (documented in :mod:`models.networks.schema`) can override it, so
any generator pairs with any discriminator and a preset can rebuild an original architecture from keys alone.
Keys whose default depends on the choice default to ``null``; :func:`resolve_options` fills them in from
:data:`CHOICE_DEFAULTS` and, for a resnet, :data:`ARCHITECTURE_DEFAULTS`.
"""
from __future__ import annotations

import jsonschema

from infra.errors import UserError
from models.networks.schema import NETWORK_CHOICES, NETWORK_OPTIONS_SCHEMA

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

# Defaults that follow the architecture rather than the choice: SNGAN and BigGAN's residual networks use ReLU
# throughout and no normalization in the discriminator.
ARCHITECTURE_DEFAULTS = {
    "resnet": {"generator": {"activation": "relu"}, "discriminator": {"activation": "relu", "normalization": "none"}},
}

# The label conditionings each role can use.
ROLE_CONDITIONINGS = {"generator": ("concat", "batch_norm"), "discriminator": ("concat", "projection")}

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
    defaults = dict(CHOICE_DEFAULTS[role][choice])
    architecture = options.get("architecture") or defaults["architecture"]
    defaults.update(ARCHITECTURE_DEFAULTS.get(architecture, {}).get(role, {}))
    resolved.update(defaults)
    resolved.update({
        key: value
        for key, value in options.items()
        if key in NETWORK_OPTIONS_SCHEMA and not (value is None and key in (*defaults, "conditional"))
    })
    resolved["choice"] = choice
    resolved["conditioning"] = resolved["conditioning"] or "concat"
    if resolved["widths"] is None and resolved["architecture"] == "mlp":
        resolved["widths"] = MLP_WIDTHS[role]
    if resolved["refine_kernel_size"] is None:
        resolved["refine_kernel_size"] = resolved["kernel_size"]
    _check_combinations(resolved, role)
    return resolved


def _check_combinations(resolved: dict, role: str) -> None:
    """Refuse keys that cannot work together, naming what is allowed."""
    if role == "discriminator" and resolved["choice"] == "wgan_gp" and resolved["normalization"] == "batch":
        raise UserError(
            "discriminator.normalization: 'batch' is not allowed for a wgan_gp critic (the gradient penalty is "
            "per sample); use 'layer' or 'none'"
        )
    conditioning, allowed = resolved["conditioning"], ROLE_CONDITIONINGS[role]
    if conditioning not in allowed:
        raise UserError(f"{role}.conditioning: {conditioning!r} is not allowed for a {role}; allowed: "
                        f"{', '.join(allowed)} (or null)")
    if conditioning == "batch_norm" and resolved["normalization"] != "batch":
        raise UserError(
            f"{role}.conditioning: 'batch_norm' makes the batch norms class-conditional and normalization is "
            f"{resolved['normalization']!r}; set normalization to 'batch' or use conditioning 'concat'"
        )
    if role == "discriminator" and resolved["palette"] is not None:
        raise UserError("discriminator.palette: only a generator draws from a palette; set it on the generator or "
                        "leave it null")
    if resolved["palette_scale"] > 1 and (resolved["palette"] is None or resolved["architecture"] == "mlp"):
        raise UserError(f"{role}.palette_scale: {resolved['palette_scale']} needs a generator with a palette and "
                        "architecture conv or resnet; set palette_scale to 1 or add them")
    if resolved["palette_background"] is not None and resolved["palette"] is None:
        raise UserError(f"{role}.palette_background: {resolved['palette_background']!r} needs a generator with a "
                        "palette; set palette (2 or more) or leave palette_background null")
    if resolved["architecture"] == "shapes":
        _check_shapes(resolved, role)
    if resolved["architecture"] == "vector":
        _check_vector(resolved, role)
    if resolved["skip_excitation"] and (role == "discriminator"
                                        or resolved["architecture"] in ("mlp", "shapes", "vector")):
        raise UserError(f"{role}.skip_excitation: only a conv or resnet generator gates its feature maps; set "
                        "skip_excitation false here")
    if resolved["self_attention"] is not None and resolved["architecture"] in ("mlp", "shapes", "vector"):
        raise UserError(f"{role}.self_attention: an {resolved['architecture']} network has no feature maps to "
                        "attend over; set self_attention to null or architecture to conv or resnet")


def _check_shapes(resolved: dict, role: str) -> None:
    """The shapes generator draws one mask, which a two-colour palette paints."""
    if role == "discriminator":
        raise UserError("discriminator.architecture: 'shapes' draws images and is for generators only; allowed "
                        "for a discriminator: mlp, conv, resnet")
    if resolved["palette"] != 2:
        raise UserError(f"generator.palette: {resolved['palette']!r} with architecture 'shapes'; the shapes "
                        "generator draws a mark on a background, so set palette to 2")


def _check_vector(resolved: dict, role: str) -> None:
    """The vector generator paints its parts from a palette whose entry 0 is the background."""
    if role == "discriminator":
        raise UserError("discriminator.architecture: 'vector' draws images and is for generators only; allowed "
                        "for a discriminator: mlp, conv, resnet")
    if resolved["palette"] is None:
        raise UserError("generator.palette: null with architecture 'vector'; the vector generator paints its parts "
                        "from a palette whose entry 0 is the background, so set palette to 2 or more (e.g. 4)")
    if resolved["palette_scale"] != 1:
        raise UserError(f"generator.palette_scale: {resolved['palette_scale']} with architecture 'vector'; the "
                        "vector renderer draws at any size, so set palette_scale to 1")


def is_conditional(options: dict) -> bool:
    """Whether a generator or discriminator config object takes class labels."""
    conditional = options.get("conditional")
    if conditional is None:
        return options.get("choice") == "cgan"
    return bool(conditional)


def needs_labels(config: dict) -> bool:
    """Whether a resolved run config trains on class labels (either network is conditional)."""
    return is_conditional(config["generator"]) or is_conditional(config["discriminator"])
