"""Training configs: every option's documentation, bounds and default, and the one function that resolves them.

Keras-free, so that a bad config is reported before Keras loads:

- :mod:`models.config.schema`: the JSON schema (``python -m models.train --list-options`` prints it).
- :mod:`models.config.network_schema`, :mod:`models.config.augment_schema`: the schema's ``generator`` /
  ``discriminator`` keys and its ``augment`` object.
- :mod:`models.config.defaults`: the defaults that depend on other options (the discriminator's regime, the
  networks' choice and architecture).
- :mod:`models.config.networks`: resolving one network's keys; :mod:`models.config.resolve`: a whole config.
- :mod:`models.config.limits`: names and bounds shared with the trainer, the server and the benches.
"""
from models.config.augment_schema import AUGMENT_SCHEMA, TRANSFORMS
from models.config.defaults import NULL_IS_A_SETTING
from models.config.limits import (BACKENDS, CLASS_LOSS_TYPES, MAX_BATCH_SIZE, MAX_DEVICES, MAX_EVAL_SAMPLES,
                                  MAX_GRID_SIDE, MAX_IMAGE_SIZE, MAX_LATENT_DIM, MAX_SEED, MAX_STEPS, PRECISIONS)
from models.config.network_schema import ACTIVATIONS, NETWORK_CHOICES, NETWORK_OPTIONS_SCHEMA
from models.config.networks import ROLES, is_conditional, needs_labels, resolve_network
from models.config.resolve import apply_override, backfill, keys_problem, load_config, resolve
from models.config.schema import describe_error, option_lines, schema, validate

__all__ = [
    "ACTIVATIONS", "AUGMENT_SCHEMA", "BACKENDS", "CLASS_LOSS_TYPES", "MAX_BATCH_SIZE", "MAX_DEVICES",
    "MAX_EVAL_SAMPLES", "MAX_GRID_SIDE", "MAX_IMAGE_SIZE", "MAX_LATENT_DIM", "MAX_SEED", "MAX_STEPS",
    "NETWORK_CHOICES", "NETWORK_OPTIONS_SCHEMA", "NULL_IS_A_SETTING", "PRECISIONS", "ROLES", "TRANSFORMS",
    "apply_override", "backfill", "describe_error", "is_conditional", "keys_problem", "load_config",
    "needs_labels", "option_lines", "resolve", "resolve_network", "schema", "validate",
]
