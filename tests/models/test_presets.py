"""The presets in configs/: each resolves, reproduces its original's architecture, and trains."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import builders
from models.config import load_config, resolve
from models.data import load_training_data
from models.networks import NETWORK_OPTIONS_SCHEMA
from models.train import main as train
from preprocessing.dataset import save_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESETS = sorted(path.stem for path in CONFIGS.glob("*.json"))
FASHION_PRESETS = {"gan_gan", "dcgan_dcgan", "dcgan_gan", "cgan_cgan", "wgan_wgan", "wgan_gp_wgan_gp",
                   "cgan_fashion_mnist", "fashiongan", "keras_dcgan_tutorial", "fashion_small_data"}
LOGO_PRESETS = {"logos_dcgan": 56, "logos_dcgan_walkthrough": 56, "logos_wgan_gp": 56, "logos_small_data": 56,
                "logos_shapes": 56, "logos_vector": 56, "logos_dcgan_112": 112, "logos_wgan_gp_112": 112,
                "dcgan64_reference": 56}  # 56 px resized to 64


def test_every_listed_preset_exists():
    assert set(PRESETS) == FASHION_PRESETS | set(LOGO_PRESETS)


def resolved_preset(name: str, image_shape, class_names=None) -> dict:
    config = resolve(load_config(CONFIGS / f"{name}.json"), name)
    config["image_shape"], config["class_names"] = list(image_shape), class_names
    return config


def test_fashiongan_networks_have_the_notebooks_parameter_counts():
    config = resolved_preset("fashiongan", (28, 28, 1))
    assert config["latent_dim"] == 128
    assert builders.build_generator(config).count_params() == 2_155_137
    assert builders.build_discriminator(config).count_params() == 1_113_345


def test_dcgan64_reference_has_pytorch_examples_dcgan_weights_plus_conv_biases():
    """pytorch/examples' DCGAN (nz 100, ngf = ndf = 64) has 3,576,704 / 2,765,568 parameters, all bias-free."""
    config = resolved_preset("dcgan64_reference", (64, 64, 3))
    for network, pytorch_count in ((builders.build_generator(config), 3_576_704),
                                   (builders.build_discriminator(config), 2_765_568)):
        sizes = {weight.path: int(np.prod(weight.shape)) for weight in network.trainable_weights}
        biases = sum(size for path, size in sizes.items() if path.endswith("/bias"))
        assert sum(sizes.values()) - biases == pytorch_count


@pytest.mark.parametrize("name", PRESETS)
def test_presets_override_only_what_differs_from_the_defaults(name):
    raw = load_config(CONFIGS / f"{name}.json")
    for role in ("generator", "discriminator"):
        for key, value in raw[role].items():
            if key in NETWORK_OPTIONS_SCHEMA:
                assert value != NETWORK_OPTIONS_SCHEMA[key]["default"] or value is None, f"{name}: {role}.{key}"
    assert raw["metric_evaluate"] == "none"


@pytest.fixture(scope="module")
def small_datasets(fashion_mnist_dir, tmp_path_factory):
    """64 labelled Fashion-MNIST images, and 16 coloured logo-sized images per size."""
    folder = tmp_path_factory.mktemp("preset-data")
    fashion = load_training_data(str(fashion_mnist_dir))
    paths = {"fashion": save_dataset(folder / "fashion.npz", fashion.x[:64], fashion.y[:64], fashion.class_names)}
    rng = np.random.default_rng(0)
    for size in set(LOGO_PRESETS.values()):
        colours = rng.integers(0, 256, size=(16, 1, 1, 3), dtype=np.uint8)
        x = np.where(rng.random((16, size, size, 1)) < 0.5, colours, 255).astype(np.uint8)
        paths[size] = save_dataset(folder / f"logos_{size}.npz", x)
    return paths


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_trains(name, small_datasets, tmp_path):
    data = small_datasets["fashion"] if name in FASHION_PRESETS else small_datasets[LOGO_PRESETS[name]]
    status = train([
        "--config", str(CONFIGS / f"{name}.json"), "--data", str(data), "--steps", "2", "--name", name,
        "--runs-dir", str(tmp_path), "--no-progress", "--set", "batch_size=4", "--set", "tensorboard=false",
        "--set", "n_critic=1", "--set", "sample_columns=2",  # the trainer's own tests cover n_critic and grids
    ])
    run = tmp_path / name
    assert status == 0
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    config = json.loads((run / "config.json").read_text())
    preset = load_config(CONFIGS / f"{name}.json")
    assert config["generator"]["choice"] == preset["generator"]["choice"]
    assert config["image_shape"][0] == (preset.get("image_size") or LOGO_PRESETS.get(name, 28))
    assert (run / "generator.keras").is_file()
