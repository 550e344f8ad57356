"""Config validation, defaults per discriminator, --set overrides and the one-line errors."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra.errors import UserError
from models import config as configs

MINIMAL = {"generator": {"choice": "dcgan"}, "discriminator": {"choice": "gan"},
           "data_path": "data/simple_icons_56.npz", "metric_evaluate": "none"}


def with_choices(generator: str, discriminator: str, **extra) -> dict:
    return {**MINIMAL, "generator": {"choice": generator}, "discriminator": {"choice": discriminator}, **extra}


def test_minimal_config_gets_bce_adam_defaults():
    config = configs.resolve(MINIMAL)
    assert (config["loss"], config["n_critic"], config["clip_value"], config["lambda_gp"]) == ("bce", 1, 0.0, 0.0)
    assert config["generator"]["optimizer"] == {"choice": "adam", "learning_rate": 2e-4, "beta_1": 0.5,
                                                "beta_2": 0.999}
    assert config["batch_size"] == 64 and config["latent_dim"] == 100 and config["steps"] == 10000
    assert config["generator"]["output_activation"] == "tanh"  # a network option's schema default


def test_wgan_discriminator_brings_clipping_critic_steps_and_rmsprop():
    config = configs.resolve(with_choices("dcgan", "wgan"))
    assert (config["loss"], config["n_critic"], config["clip_value"], config["lambda_gp"]) == \
        ("wasserstein", 5, 0.01, 0.0)
    for role in ("generator", "discriminator"):
        assert config[role]["optimizer"] == {"choice": "rmsprop", "learning_rate": 5e-5, "beta_1": None,
                                             "beta_2": None}


def test_wgan_gp_discriminator_brings_gradient_penalty_and_adam_0_5_0_9():
    config = configs.resolve(with_choices("wgan_gp", "wgan_gp"))
    assert (config["loss"], config["n_critic"], config["clip_value"], config["lambda_gp"]) == \
        ("wasserstein", 5, 0.0, 10.0)
    assert config["discriminator"]["optimizer"] == {"choice": "adam", "learning_rate": 1e-4, "beta_1": 0.5,
                                                    "beta_2": 0.9}


def test_explicit_keys_beat_the_discriminator_defaults():
    config = configs.resolve(with_choices("dcgan", "wgan", loss="hinge", n_critic=2, clip_value=0.05))
    assert (config["loss"], config["n_critic"], config["clip_value"]) == ("hinge", 2, 0.05)


def test_set_overrides_parse_json_and_create_nested_keys():
    config = configs.apply_override(MINIMAL, "generator.optimizer.learning_rate=1e-4")
    config = configs.apply_override(config, "loss=lsgan")
    config = configs.apply_override(config, "discriminator.widths=[16, 32]")
    resolved = configs.resolve(config)
    assert resolved["generator"]["optimizer"]["learning_rate"] == 1e-4
    assert resolved["loss"] == "lsgan"
    assert resolved["discriminator"]["widths"] == [16, 32]
    assert MINIMAL["generator"] == {"choice": "dcgan"}  # the original is left alone


@pytest.mark.parametrize("assignment", ["learning_rate", "=3", "generator.choice.deeper=1"])
def test_malformed_set_is_one_line(assignment):
    with pytest.raises(UserError) as error:
        configs.apply_override(MINIMAL, assignment)
    assert "\n" not in str(error.value) and "--set" in str(error.value)


@pytest.mark.parametrize("change, expected", [
    ({"generator": {"choice": "dcgan", "colour": 3}}, ["unknown key generator.colour", "allowed keys:", "width"]),
    ({"bacth_size": 3}, ["unknown key bacth_size", "batch_size"]),
    ({"discriminator": {"choice": "xgan"}}, ["discriminator.choice", '"xgan"', '"wgan_gp"']),
    ({"loss": "mse"}, ["loss", '"mse"', '"hinge"', '"lsgan"']),
    ({"batch_size": 0}, ["batch_size = 0", "minimum"]),
    ({"generator": {"choice": "dcgan", "optimizer": {"learning_rate": "fast"}}},
     ["generator.optimizer.learning_rate", '"fast"']),
])
def test_bad_keys_and_values_name_path_value_and_what_is_allowed(change, expected):
    with pytest.raises(UserError) as error:
        configs.resolve({**MINIMAL, **change}, "my.json")
    message = str(error.value)
    assert message.startswith("my.json: ") and "\n" not in message
    for part in expected:
        assert part in message


@pytest.mark.parametrize("change, expected", [
    ({"generator": {"choice": "dcgan", "architecture": "vector", "vector_parts": ["box"] * 100_000}},
     'generator.vector_parts = ["box", "box", "box", "box", "box", "box", "box", "box", "box", "box", "box", "b... '
     "(100000 items): 100000 items where at most 64 are allowed"),
    ({"name": "x" * 1_000_000}, 'name = "' + "x" * 79 + '... (1000000 characters): 1000000 characters where at '
     "most 100 are allowed"),
    ({f"key{index}": 1 for index in range(50)}, "unknown key key0, key1, key10, key11, key12, key13, key14, key15, "
     "key16, key17 and 40 more; allowed keys:"),
    ({"image_shape": [56, 56, 4]}, "image_shape.2 = 4 is not allowed; allowed: 1, 3"),
    ({"image_shape": [100_000, 56, 3]}, "image_shape.0 = 100000: 100000 is greater than the maximum of 1024"),
])
def test_a_huge_bad_value_is_named_in_a_short_line(change, expected):
    """A value pasted by mistake (or written by an attacker into a run's config.json) is cut in the error, which
    still names its size and the limit."""
    with pytest.raises(UserError) as error:
        configs.resolve({**MINIMAL, **change}, "my.json")
    message = str(error.value)
    assert message.startswith("my.json: " + expected) and "\n" not in message
    assert len(message) < 2000


def test_steps_and_epochs_together_are_refused():
    with pytest.raises(UserError, match="steps = 5 and epochs = 2"):
        configs.resolve({**MINIMAL, "steps": 5, "epochs": 2})
    assert configs.resolve({**MINIMAL, "epochs": 2})["steps"] is None


def test_adam_betas_on_rmsprop_are_refused_not_ignored():
    config = {**MINIMAL, "generator": {"choice": "dcgan", "optimizer": {"choice": "rmsprop", "beta_1": 0.5}}}
    with pytest.raises(UserError, match="generator.optimizer.beta_1 = 0.5 applies only to adam"):
        configs.resolve(config)


def test_resolved_config_resolves_to_itself():
    resolved = configs.resolve(with_choices("cgan", "wgan_gp", epochs=3))
    assert configs.resolve(json.loads(json.dumps(resolved))) == resolved


def test_every_option_is_documented_in_the_listing():
    listing = "\n" + "\n".join(configs.option_lines())
    schema = configs.schema()
    for key, option in schema["properties"].items():
        assert option.get("description"), key
        assert key in listing
    for key, option in schema["properties"]["discriminator"]["properties"].items():
        assert option.get("description"), key
        assert f"discriminator.{key}" in listing
    assert "generator.optimizer.learning_rate" in listing
    # Wrapped for a terminal: every description line fits in 100 columns.
    assert max(len(line) for line in listing.splitlines() if line.startswith("    ")) <= 100


MINIMAL_KEYS = '"generator": {"choice": "dcgan"}, "discriminator": {"choice": "gan"}'


@pytest.mark.parametrize("text, expected", [
    (None, "no such config file"), ("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"),
    # Python's decoder takes these; each would train on something the file does not say.
    ("{%s, \"label_smoothing\": NaN}" % MINIMAL_KEYS, "holds NaN, which JSON does not allow; write a finite number"),
    ("{%s, \"r1_gamma\": 1e999}" % MINIMAL_KEYS, "holds the number 1e999, beyond the range of a float"),
    ("{%s, \"generator\": {\"choice\": \"gan\"}}" % MINIMAL_KEYS, "gives the key 'generator' twice in one object"),
    ("{\"a\": " * 100_000 + "1" + "}" * 100_000, "is nested too deeply; at most 32 levels"),
    ("{%s, \"steps\": 1%s}" % (MINIMAL_KEYS, "0" * 5000), "holds a number with 5001 digits; at most 40"),
])
def test_unreadable_config_files(tmp_path, text, expected):
    path = tmp_path / "config.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UserError) as error:
        configs.load_config(path)
    assert str(error.value).startswith(str(path)) and expected in str(error.value) and "\n" not in str(error.value)


def test_a_config_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{%s}" % MINIMAL_KEYS, encoding="utf-8-sig")  # as Notepad writes UTF-8
    assert configs.load_config(path) == {"generator": {"choice": "dcgan"}, "discriminator": {"choice": "gan"}}


@pytest.mark.parametrize("value, expected", [
    ("NaN", "--set label_smoothing holds NaN"), ("-Infinity", "--set label_smoothing holds -Infinity"),
    ("1e999", "--set label_smoothing holds the number 1e999"), ("[" * 5000, "--set label_smoothing is nested too deeply"),
])
def test_set_values_are_read_as_strictly_as_config_files(value, expected):
    with pytest.raises(UserError, match=re.escape(expected)):
        configs.apply_override({}, f"label_smoothing={value}")
    assert configs.apply_override({}, "name=abc") == {"name": "abc"}  # a bare word is still a string


def test_list_options_and_help_show_every_flag_and_option(capsys):
    from models import train

    assert train.main(["--list-options"]) == 0
    listing = capsys.readouterr().out
    assert "lambda_gp  (number/null; default null)" in listing and "generator.optimizer.beta_2" in listing
    with pytest.raises(SystemExit):
        train.main(["--help"])
    help_text = capsys.readouterr().out
    for flag in ("--config", "--resume", "--data", "--data-dir", "--set", "--steps", "--name", "--runs-dir",
                 "--backend", "--no-progress", "--list-options", "examples:"):
        assert flag in help_text


# --- issue 40: one resolution, saved whole ---

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FIXTURES = Path(__file__).parent / "fixtures" / "runs_before_issue40"


def leaf_options(node: dict, prefix: str = ""):
    """(path, option, required) for every option that is not a group of options."""
    for key, option in node["properties"].items():
        if "properties" in option:
            yield from leaf_options(option, prefix + key + ".")
        else:
            yield prefix + key, option, key in node.get("required", ())


def null_paths(config: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in config.items():
        if isinstance(value, dict):
            paths += null_paths(value, prefix + key + ".")
        elif value is None:
            paths.append(prefix + key)
    return paths


def null_is_a_setting(path: str) -> bool:
    return path in configs.NULL_IS_A_SETTING or "*." + path.split(".", 1)[-1] in configs.NULL_IS_A_SETTING


def test_every_listed_option_has_a_type_a_default_and_a_description():
    listing = "\n" + "\n".join(configs.option_lines())
    options = list(leaf_options(configs.schema()))
    assert len(options) > 90
    for path, option, required in options:
        assert len(option.get("description", "")) > 10, path
        assert "type" in option or "enum" in option, path
        assert "default" in option or (required and path.endswith("choice")), path
        kind = "one of" if "enum" in option else "/".join(np_types(option["type"]))
        default = json.dumps(option["default"]) if "default" in option else "required"
        entry = listing.split(f"\n{path}  (")  # from the start of a line: latent_dim is not generator.part_latent_dim
        heading = entry[1].split("\n")[0] if len(entry) == 2 else ""
        assert heading.startswith(kind) and heading.endswith(f"; default {default})"), path


def np_types(kind) -> list[str]:
    return kind if isinstance(kind, list) else [kind]


@pytest.mark.parametrize("preset", sorted(path.stem for path in CONFIGS.glob("*.json")))
def test_every_preset_resolves_every_option_that_has_a_default(preset):
    resolved = configs.resolve(configs.load_config(CONFIGS / f"{preset}.json"), preset)
    left_open = [path for path in null_paths(resolved) if not null_is_a_setting(path)]
    assert left_open == []
    for role in configs.ROLES:
        network = resolved[role]
        assert network["architecture"] in ("mlp", "conv", "resnet", "shapes", "vector")
        assert network["normalization"] in ("batch", "layer", "none") and network["activation"]
        assert type(network["conditional"]) is bool and network["conditioning"]
        assert configs.resolve_network(network, role) == network  # the builders change nothing
    assert configs.resolve(json.loads(json.dumps(resolved)), preset) == resolved


def test_the_shapes_preset_names_its_discriminator_in_full():
    resolved = configs.resolve(configs.load_config(CONFIGS / "logos_shapes.json"))
    discriminator = resolved["discriminator"]
    assert (discriminator["architecture"], discriminator["normalization"], discriminator["activation"],
            discriminator["conditional"], discriminator["conditioning"]) == ("conv", "batch", "leaky_relu", False,
                                                                            "concat")
    assert resolved["generator"]["widths"] == [256, 256] and resolved["generator"]["refine_kernel_size"] == 4


def test_cgan_means_conditional_in_both_roles_unless_told_otherwise():
    for role in configs.ROLES:
        assert configs.resolve_network({"choice": "cgan"}, role)["conditional"] is True
        assert configs.resolve_network({"choice": "cgan", "conditional": False}, role)["conditional"] is False
        assert configs.resolve_network({"choice": "dcgan"}, role)["conditional"] is False
    assert configs.resolve(with_choices("cgan", "dcgan"))["generator"]["conditional"] is True


def test_vector_parts_default_and_explicit_nulls_stay_null():
    config = with_choices("dcgan", "dcgan")
    config["generator"] = {"choice": "dcgan", "architecture": "vector", "palette": 4, "init_std": None}
    generator = configs.resolve(config)["generator"]
    assert generator["vector_parts"] == ["box", "path", "path", "stroke", "box", "path", "stroke", "path"]
    assert generator["widths"] == [256, 256] and generator["init_std"] is None  # null there means Glorot


@pytest.mark.parametrize("run", ["logos_shapes", "fashion_small_data"])
def test_a_config_json_from_before_the_change_is_backfilled_when_read(tmp_path, run):
    from models import run_folder

    written = json.loads((FIXTURES / f"{run}.json").read_text())
    assert written["discriminator"]["architecture"] is None  # as the code before the change saved it
    # Older still: options added since are missing altogether.
    for role in configs.ROLES:
        for key in ("vector_parts", "curve_samples", "stroke_segments"):
            written[role].pop(key)
    for key in ("top_k_fraction", "reconstruction_scale", "precision"):
        written.pop(key)
    (tmp_path / run_folder.CONFIG_FILE).write_text(json.dumps(written))
    config, problem = run_folder.read_config(tmp_path)
    assert problem is None and run_folder.generator_config_problem(config) is None
    assert config == configs.resolve(written) and null_paths(config) == [
        path for path in null_paths(config) if null_is_a_setting(path)]
    assert (config["top_k_fraction"], config["precision"], config["generator"]["curve_samples"]) == \
        (1.0, "float32", 4)
    discriminator = config["discriminator"]
    conditional = run == "fashion_small_data"  # its discriminator sets normalization none; logos_shapes' leaves it
    assert (discriminator["architecture"], discriminator["normalization"], discriminator["activation"]) == \
        ("conv", "none" if conditional else "batch", "leaky_relu")
    assert config["generator"]["conditional"] is conditional and discriminator["conditional"] is conditional
    if conditional:
        assert (config["generator"]["conditioning"], discriminator["conditioning"]) == ("batch_norm", "projection")


def test_generator_keys_are_checked_by_the_schema(tmp_path):
    from models import run_folder

    written = json.loads((FIXTURES / "logos_shapes.json").read_text())
    for change, expected in (({"latent_dim": 0}, "config.json: latent_dim = 0: 0 is less than the minimum of 1"),
                             ({"class_names": []}, "config.json: class_names = []"),
                             ({"image_shape": [56, 56]}, "config.json: image_shape = [56, 56]"),
                             ({"image_shape": None}, "config.json: image_shape = null is not [height, width, channels]")):
        (tmp_path / run_folder.CONFIG_FILE).write_text(json.dumps({**written, **change}))
        config, problem = run_folder.read_config(tmp_path)
        assert problem is None and run_folder.generator_config_problem(config).startswith(expected), change
    # An odd value in a key generation does not read leaves the generator buildable.
    (tmp_path / run_folder.CONFIG_FILE).write_text(json.dumps({**written, "batch_size": {"a": 1}}))
    config, _ = run_folder.read_config(tmp_path)
    assert run_folder.generator_config_problem(config) is None and config["discriminator"]["architecture"] == "conv"
