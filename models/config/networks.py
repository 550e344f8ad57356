"""Resolving the network keys of the config's ``generator`` and ``discriminator`` objects for one network.

A network's ``choice`` (gan, dcgan, cgan, wgan, wgan_gp) is a family of defaults, not a separate code path:
every key of :data:`NETWORK_OPTIONS_SCHEMA` (documented in :mod:`models.config.network_schema`) can override it,
so any generator pairs with any discriminator and a preset can rebuild an original architecture from keys alone.
:func:`resolve_network` fills in the keys whose default depends on the role, the choice or the architecture
(:mod:`models.config.defaults`). :func:`models.config.resolve` calls it for both networks, so a run's config.json
holds its result; the network builders call it too, which changes nothing in a resolved network and lets them
build from a few keys.
"""
from __future__ import annotations

import copy

import jsonschema

from infra.errors import UserError
from models.config.defaults import (ARCHITECTURE_DEFAULTS, AUTO_PALETTE_MULTI, AUTO_PALETTE_SINGLE, CHOICE_DEFAULTS,
                                    CONDITIONAL_CHOICES, DEFAULT_CONDITIONING, DRAWN_ARCHITECTURES, DRAWN_WIDTHS,
                                    MLP_WIDTHS, VECTOR_PARTS)
from models.config.network_schema import NETWORK_CHOICES, NETWORK_OPTIONS_SCHEMA

ROLES = ("generator", "discriminator")
# The label conditionings each role can use.
ROLE_CONDITIONINGS = {"generator": ("concat", "batch_norm"), "discriminator": ("concat", "projection")}

_VALIDATOR = jsonschema.Draft202012Validator({"type": "object", "properties": NETWORK_OPTIONS_SCHEMA})


def _choice(options: dict, role: str) -> str:
    choice = options.get("choice")
    if choice not in NETWORK_CHOICES:
        raise UserError(f"{role}.choice: {choice!r} is not allowed; choose one of {', '.join(NETWORK_CHOICES)}")
    return choice


def resolve_network(options: dict, role: str) -> dict:
    """Every key of the network (and any other key it holds, such as its optimizer) with its value for this role
    and choice; a bad value is a one-line UserError. A resolved network resolves to itself."""
    choice = _choice(options, role)
    for error in _VALIDATOR.iter_errors(options):
        path = ".".join(str(part) for part in (role, *error.absolute_path))
        raise UserError(f"{path}: {error.message}")
    resolved = {key: copy.deepcopy(spec["default"]) for key, spec in NETWORK_OPTIONS_SCHEMA.items()}
    resolved.update(copy.deepcopy(options))
    # The keys whose null means "the default for this network".
    defaults = dict(CHOICE_DEFAULTS[role][choice])
    defaults.update(ARCHITECTURE_DEFAULTS.get(options.get("architecture") or defaults["architecture"], {})
                    .get(role, {}))
    defaults.update(conditional=is_conditional(options), conditioning=DEFAULT_CONDITIONING,
                    refine_kernel_size=resolved["kernel_size"], vector_parts=VECTOR_PARTS)
    for key, value in defaults.items():
        if options.get(key) is None:
            resolved[key] = copy.deepcopy(value)
    resolved["choice"] = choice
    if resolved["architecture"] == "mlp" and resolved["widths"] is None:
        resolved["widths"] = list(MLP_WIDTHS[role])
    if resolved["architecture"] in DRAWN_ARCHITECTURES and not resolved["widths"]:
        resolved["widths"] = list(DRAWN_WIDTHS)
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
                        "architecture conv, resnet, shapes or vector; set palette_scale to 1 or add them")
    if resolved["palette_background"] is not None and resolved["palette"] is None:
        raise UserError(f"{role}.palette_background: {resolved['palette_background']!r} needs a generator with a "
                        "palette; set palette (2 or more) or leave palette_background null")
    if resolved["palette"] == "auto" and resolved["architecture"] != "vector":
        raise UserError(f"{role}.palette: 'auto' (a palette of {AUTO_PALETTE_SINGLE} or {AUTO_PALETTE_MULTI}, from "
                        "the data's colours) is for architecture "
                        f"'vector'; with {resolved['architecture']!r} set a number of entries (2 or more) or null")
    if resolved["architecture"] == "shapes":
        _check_shapes(resolved, role)
    if resolved["architecture"] == "vector":
        _check_vector(resolved, role)
    if resolved["skip_excitation"] and (role == "discriminator"
                                        or resolved["architecture"] in ("mlp", "shapes", "vector")):
        raise UserError(f"{role}.skip_excitation: only a conv or resnet generator gates its feature maps; set "
                        "skip_excitation false here")
    if resolved["minibatch_std"] and (role == "generator" or resolved["architecture"] == "mlp"):
        raise UserError(f"{role}.minibatch_std: {resolved['minibatch_std']} needs a conv or resnet discriminator "
                        "(it adds a channel to the last feature map); set minibatch_std 0 here")
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


def is_conditional(options: dict) -> bool:
    """Whether a generator or discriminator config object (resolved or as written) takes class labels."""
    conditional = options.get("conditional")
    if conditional is None:
        return options.get("choice") in CONDITIONAL_CHOICES
    return bool(conditional)


def needs_labels(config: dict) -> bool:
    """Whether a run config trains on class labels (either network is conditional)."""
    return is_conditional(config["generator"]) or is_conditional(config["discriminator"])
