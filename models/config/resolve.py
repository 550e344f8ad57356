"""Reading a config, applying ``--set`` overrides, and resolving it: every option of the run and of both networks
set, so that a run's config.json is exactly what it used and an older run's config.json reads the same way."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema

from infra.bounded_json import NotJson, loads_bounded
from infra.errors import UserError
from infra.regular_files import read_regular_file
from models.config.defaults import ADAM_ONLY_KEYS, DEFAULT_REGIME, REGIMES
from models.config.limits import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH
from models.config.networks import ROLES, resolve_network
from models.config.schema import describe_error, schema, validate


def _fill_defaults(node_schema: dict, value: dict) -> dict:
    filled = dict(value)
    for key, key_schema in node_schema.get("properties", {}).items():
        if key not in filled and "default" in key_schema:
            filled[key] = copy.deepcopy(key_schema["default"])
        if isinstance(filled.get(key), dict) and "properties" in key_schema:
            filled[key] = _fill_defaults(key_schema, filled[key])
    return filled


def _resolve_regime(config: dict) -> dict:
    regime = REGIMES.get(config["discriminator"]["choice"], DEFAULT_REGIME)
    for key in ("loss", "n_critic", "clip_value", "lambda_gp"):
        if config[key] is None:
            config[key] = regime[key]
    for role in ROLES:
        optimizer = config[role]["optimizer"]
        if optimizer["choice"] is None:
            optimizer["choice"] = regime["optimizer"]["choice"]
        if optimizer["learning_rate"] is None:
            optimizer["learning_rate"] = regime["optimizer"]["learning_rate"]
        for key in ADAM_ONLY_KEYS:
            if optimizer["choice"] == "adam" and optimizer[key] is None:
                optimizer[key] = regime["optimizer"].get(key, DEFAULT_REGIME["optimizer"][key])
            elif optimizer["choice"] != "adam" and optimizer[key] is not None:
                raise UserError(f"{role}.optimizer.{key} = {optimizer[key]} applies only to adam, "
                                f"not {optimizer['choice']}; remove it or set {role}.optimizer.choice=adam")
    return config


def resolve(config: dict, source: str = "config") -> dict:
    """Validate ``config`` and return a copy with every option set: the schema's defaults, the discriminator's
    regime and each network's keys for its role, choice and architecture. A resolved config resolves to itself,
    and an older run's config.json resolves to what that run used (see :func:`backfill`)."""
    validate(config, source)
    if config.get("steps") is not None and config.get("epochs") is not None:
        raise UserError(f"{source}: steps = {config['steps']} and epochs = {config['epochs']} are both set; "
                        "set only one of them")
    resolved = _fill_defaults(schema(), config)
    for role in ROLES:
        try:
            resolved[role] = resolve_network(resolved[role], role)
        except UserError as error:
            raise UserError(f"{source}: {error}") from None
    if resolved["class_loss_weight"] and not resolved["generator"]["conditional"]:
        raise UserError(f"{source}: class_loss_weight = {resolved['class_loss_weight']} trains the generator to "
                        "draw the class asked for, but this generator takes no label; make it conditional "
                        "(generator.choice cgan or generator.conditional true) or set class_loss_weight 0")
    if resolved["data_clusters"] and not resolved["generator"]["conditional"]:
        raise UserError(f"{source}: data_clusters = {resolved['data_clusters']} trains on clusters as classes, but "
                        "this generator takes no label; set generator.conditional true (and discriminator."
                        "conditional true) or drop data_clusters")
    # The default ("ac") stands in every saved config, weight or not; only another choice without a weight
    # would be silently ignored.
    if resolved["class_loss_type"] != "ac" and not resolved["class_loss_weight"]:
        raise UserError(f"{source}: class_loss_type = {config['class_loss_type']!r} has no effect while "
                        "class_loss_weight is 0; give class_loss_weight a weight (e.g. 0.5) or drop class_loss_type")
    if resolved["reconstruction_scale"] != 2 and not resolved["reconstruction_weight"]:
        raise UserError(f"{source}: reconstruction_scale = {config['reconstruction_scale']} has no effect while "
                        "reconstruction_weight is 0; give reconstruction_weight a weight (e.g. 1) or drop "
                        "reconstruction_scale")
    if config.get("epochs") is not None:
        resolved["steps"] = None
    return _resolve_regime(resolved)


def backfill(config: dict, source: str) -> dict:
    """A run's config.json as this version reads it: :func:`resolve`, which gives every option the run's
    config.json leaves out (it was written before the option existed) the value that reproduces what the run
    did. A hand-edited config.json that no longer resolves is returned with only the missing keys filled in, for
    the readers that tolerate odd values in keys they do not use (the server's listing); what they do use they
    check with :func:`keys_problem`."""
    try:
        return resolve(config, source)
    except UserError:
        filled = _fill_defaults(schema(), config)
        for role in ROLES:
            try:
                filled[role] = resolve_network(filled[role], role)
            except (UserError, AttributeError, KeyError, TypeError):
                pass  # left as written: keys_problem names what is wrong with it
        return filled


def keys_problem(config: dict, keys: tuple[str, ...]) -> str | None:
    """Why the top-level ``keys`` of ``config`` do not pass the schema (one line, as :func:`resolve` would say
    it), or None; networks among them must also resolve."""
    properties = schema()["properties"]
    part_schema = {"type": "object", "properties": {key: properties[key] for key in keys},
                   "required": [key for key in keys if "default" not in properties[key]]}
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(part_schema).iter_errors(
        {key: config[key] for key in keys if key in config}))
    if error is not None:
        return describe_error(error)
    for role in ROLES:
        if role in keys:
            try:
                resolve_network(config[role], role)
            except UserError as network_error:
                return str(network_error)
    return None


def load_config(path: str | Path) -> dict:
    """Read a config file as it was written (not yet resolved); problems are one-line UserErrors."""
    path = Path(path)
    try:
        text = read_regular_file(path, MAX_CONFIG_BYTES).decode("utf-8-sig")  # editors on Windows write a BOM
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the config ({error})") from None
    config = loads_bounded(text, f"{path}:", max_depth=MAX_CONFIG_DEPTH, strict=True)
    if not isinstance(config, dict):
        raise UserError(f"{path}: a config must be a JSON object, got {type(config).__name__}")
    return config


def apply_override(config: dict, assignment: str) -> dict:
    """Apply one ``key.path=value`` (value parsed as JSON, else taken as a string) to a copy of ``config``."""
    key_path, separator, raw_value = assignment.partition("=")
    if not separator or not key_path:
        raise UserError(f"--set {assignment!r}: expected KEY.PATH=VALUE, e.g. generator.optimizer.learning_rate=1e-4")
    try:
        value = loads_bounded(raw_value, f"--set {key_path}", strict=True)
    except NotJson:
        value = raw_value  # a bare word; the option's own check says what is allowed
    updated = copy.deepcopy(config)
    node = updated
    keys = key_path.split(".")
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {assignment}: {'.'.join(keys[:depth + 1])} is {json.dumps(child)}, not a group "
                            "of options")
        node = child
    node[keys[-1]] = value
    return updated


