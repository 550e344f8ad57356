"""The config's JSON schema: it documents (``--list-options``), validates and gives the fixed default of every
option. A config is JSON in the shape of the toolkit LogoGAN replaces::

    {"generator": {"choice": "dcgan"}, "discriminator": {"choice": "gan"},
     "data_path": "data/simple_icons_56.npz", "metric_evaluate": "none"}

Every other key has a default. Options whose best value depends on another (the discriminator's regime: loss,
n_critic, clip_value, lambda_gp, optimizers; the networks' choice and architecture) default to null here, meaning
"what :mod:`models.config.defaults` gives for the rest of the config"; :func:`models.config.resolve` writes the
value chosen, so a run's config.json says exactly what it did.
"""
from __future__ import annotations

import copy
import json
import textwrap

import jsonschema

from infra.errors import SHOWN_CHARACTERS, UserError, shown
from models.config.augment_schema import AUGMENT_SCHEMA
from models.config.limits import (BACKENDS, CLASS_LOSS_TYPES, MAX_BATCH_SIZE, MAX_DEVICES, MAX_EVAL_SAMPLES,
                                  MAX_GRID_SIDE, MAX_IMAGE_SIZE, MAX_LATENT_DIM, MAX_SEED, MAX_STEPS, MIN_IMAGE_SIZE,
                                  PRECISIONS)
from models.config.network_schema import NETWORK_CHOICES, NETWORK_OPTIONS_SCHEMA

OPTIMIZER_SCHEMA = {
    "type": "object",
    "description": "Optimizer of this network.",
    "additionalProperties": False,
    "default": {},
    "properties": {
        "choice": {"enum": ["adam", "rmsprop", None], "default": None,
                   "description": "adam or rmsprop; null: rmsprop for a wgan discriminator, adam otherwise."},
        "learning_rate": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                          "description": "Step size; null: 5e-5 (wgan), 1e-4 (wgan_gp), 2e-4 otherwise."},
        "beta_1": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1, "default": None,
                   "description": "Adam only: first-moment decay; null: 0.5."},
        "beta_2": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1, "default": None,
                   "description": "Adam only: second-moment decay; null: 0.9 (wgan_gp), 0.999 otherwise."},
    },
}


def _network_schema(role: str) -> dict:
    return {
        "type": "object",
        "description": f"The {role} network: its type, optimizer and architecture options.",
        "additionalProperties": False,
        "required": ["choice"],
        "properties": {
            "choice": {"enum": list(NETWORK_CHOICES),
                       "description": "Network type: gan (MLP), dcgan (convolutional), cgan (conditional, "
                                      "label embedding), wgan (critic for weight clipping), wgan_gp (critic "
                                      "for gradient penalty). Any generator pairs with any discriminator."},
            "optimizer": OPTIMIZER_SCHEMA,
            **copy.deepcopy(NETWORK_OPTIONS_SCHEMA),
        },
    }


def _integer(default, description, minimum=1, nullable=False, maximum=None):
    option = {"type": ["integer", "null"] if nullable else "integer", "minimum": minimum, "default": default,
              "description": description}
    if maximum is not None:
        option["maximum"] = maximum
    return option


def schema() -> dict:
    """The whole config schema; each property's description is the option's documentation."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["generator", "discriminator"],
        "properties": {
            "generator": _network_schema("generator"),
            "discriminator": _network_schema("discriminator"),
            "data_path": {"type": ["string", "null"], "default": None,
                          "description": "Training images: a .npz dataset (local path or s3:// URL), a folder "
                                         "of images (built and cached as models.train --help says), an IDX "
                                         "gzip folder, or fashion_mnist / mnist. --data overrides it."},
            "data_dir": {"type": ["string", "null"], "default": None,
                         "description": "Local copy of fashion_mnist / mnist (IDX gzip files) for offline use."},
            "data_clusters": _integer(None, "Sort unlabelled training images into this many clusters (k-means on "
                                            "16 px thumbnails: layout and colour) and train on them as classes, "
                                            "as LLD did for logos (Sage et al. 2018); samples asked for without a "
                                            "class draw the clusters in the data's proportions. Needs a "
                                            "conditional generator; data with labels of its own keeps them. "
                                            "Measured: 8 or 16 clusters doubled the vector preset's KID on the "
                                            "2,040 multi-colour logos in 20 CPU minutes (docs/experiments.md, "
                                            "colour_v29). null: no clusters.", nullable=True, minimum=2,
                                            maximum=256),
            "image_size": _integer(None, "Resize the training images to image_size x image_size px; null: keep "
                                         "the data's size.", nullable=True, minimum=MIN_IMAGE_SIZE,
                                   maximum=MAX_IMAGE_SIZE),
            "backend": {"enum": list(BACKENDS), "default": BACKENDS[0],
                        "description": "Keras backend; --backend and KERAS_BACKEND take precedence."},
            "latent_dim": _integer(100, "Length of the generator's noise vector.", maximum=MAX_LATENT_DIM),
            "loss": {"enum": ["bce", "wasserstein", "hinge", "lsgan", None], "default": None,
                     "description": "bce (non-saturating), wasserstein, hinge or lsgan (least squares); null: "
                                    "wasserstein for wgan / wgan_gp discriminators, bce otherwise."},
            "label_smoothing": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.0,
                                "description": "One-sided label smoothing for bce: real targets become "
                                               "1 - label_smoothing (e.g. 0.1 -> 0.9)."},
            "n_critic": _integer(None, "Discriminator steps per generator step, each on a fresh real batch; "
                                       "null: 5 for wgan / wgan_gp, 1 otherwise.", nullable=True, maximum=100),
            "clip_value": {"type": ["number", "null"], "minimum": 0, "default": None,
                           "description": "Clip discriminator weights to [-clip_value, clip_value] after each "
                                          "step; 0 turns clipping off; null: 0.01 for wgan, 0 otherwise."},
            "lambda_gp": {"type": ["number", "null"], "minimum": 0, "default": None,
                          "description": "Weight of the gradient penalty (per-sample gradient norm over all "
                                         "image dimensions at uniform mixes of real and fake); null: 10 for "
                                         "wgan_gp, 0 otherwise."},
            "augment": copy.deepcopy(AUGMENT_SCHEMA),
            "ema_kimg": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                         "description": "Half-life of the generator's exponential moving average, in thousands of "
                                        "images (StyleGAN2's ema_kimg, e.g. 10). Sample grids, evaluation, "
                                        "generator.keras, models.generate and the server then use the averaged "
                                        "generator; the raw one stays in the checkpoint. null: no average."},
            "ema_rampup": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 0.05,
                           "description": "Ramp-up of the EMA half-life: at most ema_rampup x the images seen so "
                                          "far, so early weights are forgotten fast (StyleGAN2-ADA); null: none."},
            "r1_gamma": {"type": "number", "minimum": 0, "default": 0.0,
                         "description": "Weight γ of the R1 penalty γ/2·E‖∇D(x)‖² on real (augmented) images "
                                        "(Mescheder et al. 2018); 0 turns it off."},
            "r1_interval": _integer(16, "Lazy R1: apply the penalty every this many steps, scaled by the interval "
                                        "(StyleGAN2's lazy regularisation); 1: every step."),
            "lecam_weight": {"type": "number", "minimum": 0, "default": 0.0,
                             "description": "Weight of the LeCam regulariser (Tseng et al. 2021), which keeps the "
                                            "discriminator's real and fake scores near each other's moving "
                                            "averages on small data (e.g. 0.01 with hinge loss); 0 turns it off."},
            "top_k_fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1.0,
                               "description": "Top-k training (Sinha et al. 2020): the generator's adversarial loss "
                                              "keeps only this fraction of each batch, the generated images the "
                                              "discriminator scores as most real, so the worst samples do not "
                                              "steer it (e.g. 0.75); a class loss still sees every image. 1 "
                                              "keeps all."},
            "lecam_decay": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.99,
                            "description": "Decay of LeCam's moving averages of the scores."},
            "reconstruction_weight": {"type": "number", "minimum": 0, "default": 0.0,
                                      "description": "Self-supervised discriminator (FastGAN, Liu et al. 2021): a "
                                                     "decoder on the discriminator's last feature map (conv or "
                                                     "resnet) redraws each real image it sees, smaller by "
                                                     "reconstruction_scale, and the mean squared error against "
                                                     "the image average-pooled to that size, weighted by this "
                                                     "(e.g. 1), joins the discriminator's loss, so it keeps "
                                                     "features that describe real images instead of overfitting "
                                                     "to a few; 0 turns it off."},
            "reconstruction_scale": {"enum": [1, 2, 4, 8], "default": 2,
                                     "description": "How many times smaller than the images the self-supervised "
                                                    "discriminator redraws them (2: 28x28 for 56 px logos; 4: "
                                                    "14x14, a cheaper decoder); at most the image size over the "
                                                    "discriminator's last feature map. Used only with a "
                                                    "reconstruction_weight."},
            "class_loss_weight": {"type": "number", "minimum": 0, "default": 0.0,
                                  "description": "Auxiliary classifier (AC-GAN, Odena et al. 2017): the "
                                                 "discriminator gets a second head, one logit per class on the "
                                                 "features its score reads; it learns the classes of the real "
                                                 "images it sees, and the generator is trained to have its images "
                                                 "classified as the class asked for, both losses (cross-entropy) "
                                                 "weighted by this. Raises class fidelity beside any "
                                                 "conditioning. Needs a conditional generator; 0 turns it off."},
            "class_loss_type": {"enum": list(CLASS_LOSS_TYPES), "default": "ac",
                                "description": "What the auxiliary classifier learns. \"ac\": the classes of real "
                                               "images (AC-GAN), which also rewards the generator for easy, "
                                               "alike images of each class. \"adc\" (ADC-GAN, Hou et al. 2022): "
                                               "twice the classes, real class k and generated class k; the "
                                               "generator is trained to look like real class k and unlike "
                                               "generated class k, which keeps the class fidelity without "
                                               "AC-GAN's pull towards alike images. \"hinge\": AC-GAN's "
                                               "classifier with Crammer and Singer's multi-class hinge in "
                                               "place of the cross-entropy (as in MHingeGAN, Kavalerov et al. "
                                               "2021): the generator's pull ends once its image's class "
                                               "leads the others by a margin."},
            "batch_size": _integer(64, "Images per batch (per discriminator step).", maximum=MAX_BATCH_SIZE),
            "steps": _integer(10000, "Generator steps to train for (a step holds n_critic discriminator "
                                     "steps); --steps overrides it.", nullable=True, maximum=MAX_STEPS),
            "epochs": _integer(None, "Train for this many passes over the data instead of 'steps' (set one of "
                                     "the two).", nullable=True, maximum=100_000),
            "time_limit_minutes": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                                   "description": "Stop after this many minutes of training even if steps remain, "
                                                  "finishing as at the last step (checkpoint, samples, "
                                                  "generator.keras); --resume continues. null: no limit."},
            "precision": {"enum": list(PRECISIONS), "default": "float32",
                          "description": "Arithmetic of the networks: float32, or mixed bfloat16 / float16 (weights, "
                                         "optimizer state, discriminator scores, losses and penalties stay "
                                         "float32; float16 adds dynamic loss scaling). bfloat16 is for GPUs and "
                                         "TPUs; a CPU runs it slower than float32."},
            "steps_per_call": _integer(None, "Training steps fused into one compiled call (lax.scan on JAX, a "
                                             "compiled loop on TensorFlow); logging, samples, checkpoints and "
                                             "evaluation happen between calls. null: chosen for the device (8 on "
                                             "a GPU or TPU, 1 on a CPU).", nullable=True, maximum=1000),
            "data_placement": {"enum": ["auto", "device", "host"], "default": "auto",
                               "description": "Where the uint8 training images live: device (copied to the "
                                              "accelerator once; batches are gathered there), host (each call's "
                                              "batches gathered in memory and copied over), or auto: device when "
                                              "the images take at most a quarter of the device's memory."},
            "devices": {"type": ["string", "integer"], "pattern": "^all$", "minimum": 1, "maximum": MAX_DEVICES,
                        "default": "all",
                        "description": "JAX: how many local devices to train on, data-parallel (weights "
                                       "replicated, each batch split along its first axis; batch_size stays the "
                                       "global batch): all, or a number. TensorFlow trains on one device."},
            "seed": _integer(0, "Seed of weights, data order, noise and dropout: the same seed gives the same "
                                "run.", minimum=0, maximum=MAX_SEED),
            "deterministic": {"type": "boolean", "default": True,
                              "description": "TensorFlow: use deterministic ops so a resumed run matches an "
                                             "uninterrupted one exactly (slightly slower)."},
            "log_interval": _integer(50, "Steps between lines in metrics.jsonl, status.json and TensorBoard.",
                                     maximum=MAX_STEPS),
            "sample_interval": _integer(500, "Steps between sample grids samples/step_XXXXXX.png.", maximum=MAX_STEPS),
            "sample_rows": _integer(8, "Rows of a sample grid (conditional models: one row per class).",
                                    maximum=MAX_GRID_SIDE),
            "sample_columns": _integer(8, "Columns of a sample grid.", maximum=MAX_GRID_SIDE),
            "checkpoint_interval": _integer(1000, "Steps between checkpoints (one is also written at the end "
                                                  "and on Ctrl-C / SIGTERM).", maximum=MAX_STEPS),
            "sample_minutes": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                               "description": "Minutes of training between sample grids, in place of "
                                              "sample_interval (for a fast GPU, whose step rate a step count would "
                                              "misjudge). null: every sample_interval steps."},
            "checkpoint_minutes": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                                   "description": "Minutes of training between checkpoints, in place of "
                                                  "checkpoint_interval. null: every checkpoint_interval steps."},
            "keep_checkpoints": _integer(3, "How many of the latest checkpoints to keep.", maximum=1000),
            "keep_every": _integer(None, "Also keep every checkpoint whose step is a multiple of this; null: "
                                         "none.", nullable=True, maximum=MAX_STEPS),
            "tensorboard": {"type": "boolean", "default": True,
                            "description": "Write losses, metrics and sample grids to tensorboard/."},
            "metric_evaluate": {"enum": ["fid", "kid", "mmd", "class_accuracy", "none"], "default": "none",
                                "description": "Quality metric computed every eval_interval steps; the best "
                                               "value's checkpoint is kept in checkpoints/best."},
            "eval_interval": _integer(1000, "Steps between metric evaluations.", maximum=MAX_STEPS),
            "eval_samples": _integer(1000, "Generated (and real) images per metric evaluation.", minimum=2,
                                     maximum=MAX_EVAL_SAMPLES),
            "runs_dir": {"type": "string", "default": "runs",
                         "description": "Folder that holds run folders; --runs-dir overrides it."},
            "name": {"type": ["string", "null"], "default": None, "pattern": "^[A-Za-z0-9._-]+$", "maxLength": 100,
                     "description": "Run folder name; null: <generator>_<discriminator>_<timestamp>."},
            "image_shape": {"type": ["array", "null"],
                            "prefixItems": [{"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIZE},
                                            {"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIZE},
                                            {"enum": [1, 3]}],
                            "items": False, "minItems": 3, "default": None,
                            "description": "Set by the trainer from the data: [height, width, channels]."},
            "trained_on": {"type": ["string", "null"], "default": None,
                           "description": "Set by the trainer: the devices the run trains on, e.g. 4 devices (gpu)."},
            "class_names": {"type": ["array", "null"], "items": {"type": "string"}, "minItems": 1, "default": None,
                            "description": "Set by the trainer from the data: one name per class, or null."},
            "class_shares": {"type": ["array", "null"], "items": {"type": "number", "minimum": 0}, "minItems": 1,
                             "default": None,
                             "description": "Set by the trainer when it found clusters (data_clusters): each "
                                            "class's share of the images, the proportions samples draw them in."},
        },
    }


SHOWN_KEYS = 10  # unknown keys named in an error line; the rest are counted


def describe_error(error: jsonschema.ValidationError) -> str:
    """One line: the key path, the value, and what is allowed."""
    path = ".".join(str(part) for part in error.absolute_path) or "config"
    allowed = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        prefix = "" if path == "config" else path + "."
        named = ", ".join(prefix + (key if len(key) <= SHOWN_CHARACTERS else shown(key))
                          for key in unknown[:SHOWN_KEYS])
        more = f" and {len(unknown) - SHOWN_KEYS} more" if len(unknown) > SHOWN_KEYS else ""
        return f"unknown key {named}{more}; allowed keys: {', '.join(known)}"
    if error.validator == "required":
        return f"{path}: {error.message}"
    if error.validator == "enum":
        choices = ", ".join(json.dumps(choice) for choice in error.validator_value)
        return f"{path} = {shown(error.instance)} is not allowed; allowed: {choices}"
    description = allowed.get("description", "")
    message = error.message  # jsonschema's messages begin with the value itself: "[...] is too long"
    if error.validator in ("maxItems", "minItems", "maxLength", "minLength"):
        bound = "at most" if error.validator.startswith("max") else "at least"
        unit = "items" if error.validator.endswith("Items") else "characters"
        message = f"{len(error.instance)} {unit} where {bound} {error.validator_value} are allowed"
    elif len(repr(error.instance)) > SHOWN_CHARACTERS:
        message = message.replace(repr(error.instance), "it")
    return f"{path} = {shown(error.instance)}: {message}" + (f" ({description})" if description else "")


def validate(config: object, source: str) -> None:
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(config))
    if error is not None:
        raise UserError(f"{source}: {describe_error(error)}")


LISTING_WIDTH = 100  # --list-options wraps each description to this many columns, for a terminal's reading


def option_lines() -> list[str]:
    """Every option as 'key.path  (type, default X)' and its description below, indented and wrapped, for
    --list-options."""
    lines = []

    def walk(node: dict, prefix: str) -> None:
        for key, option in node.get("properties", {}).items():
            path = prefix + key
            if "properties" in option:
                lines.append(textwrap.fill(f"{path}: {option.get('description', '')}", LISTING_WIDTH,
                                           subsequent_indent="    ", break_on_hyphens=False))
                walk(option, path + ".")
                continue
            if "enum" in option:
                kind = "one of " + ", ".join(json.dumps(choice) for choice in option["enum"])
            else:
                kind = "/".join(option["type"]) if isinstance(option.get("type"), list) else option.get("type", "")
            if "maximum" in option or "exclusiveMaximum" in option:
                kind += f", {_range_text(option)}"
            default = json.dumps(option["default"]) if "default" in option else "required"
            description = textwrap.fill(option.get("description", ""), LISTING_WIDTH, initial_indent="    ",
                                        subsequent_indent="    ", break_on_hyphens=False)
            lines.append(f"{path}  ({kind}; default {default})\n{description}")

    walk(schema(), "")
    return lines


def _range_text(option: dict) -> str:
    """An option's bounds as the listing states them: "1 to 32", or in words where a bound is exclusive or
    missing ("above 0, at most 1")."""
    if "minimum" in option and "maximum" in option:
        return f"{option['minimum']} to {option['maximum']}"
    words = {"minimum": "at least", "exclusiveMinimum": "above", "maximum": "at most", "exclusiveMaximum": "below"}
    return ", ".join(f"{word} {option[bound]}" for bound, word in words.items() if bound in option)
