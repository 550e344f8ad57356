"""Config validation, defaults per discriminator, --set overrides and the one-line errors."""
from __future__ import annotations

import json

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
    listing = "\n".join(configs.option_lines())
    schema = configs.schema()
    for key, option in schema["properties"].items():
        assert option.get("description"), key
        assert key in listing
    for key, option in schema["properties"]["discriminator"]["properties"].items():
        assert option.get("description"), key
        assert f"discriminator.{key}" in listing
    assert "generator.optimizer.learning_rate" in listing


@pytest.mark.parametrize("text, expected", [
    (None, "no such config file"), ("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"),
])
def test_unreadable_config_files(tmp_path, text, expected):
    path = tmp_path / "config.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UserError) as error:
        configs.load_config(path)
    assert str(path) in str(error.value) and expected in str(error.value)


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
