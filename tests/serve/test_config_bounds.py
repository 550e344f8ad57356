"""Upper bounds on a config's sizes: stated by the schema, so the trainer's CLI and the server both refuse
a config beyond them with one line, and accept one at them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra.errors import UserError
from models import config as configs
from models.serve.app import create_app
from models.serve.jobs import JobQueue
from tests.serve.conftest import PROJECT_ROOT, tiny_config, trainer_env

LIMITS = {"image_size": 1024, "batch_size": 4096, "sample_rows": 32, "sample_columns": 32, "latent_dim": 2048,
          "eval_samples": 50_000, "seed": 2**32 - 1, "steps": 10_000_000, "n_critic": 100}


def config_with(**changes) -> dict:
    return {**tiny_config("tiny.npz"), **changes}


@pytest.mark.parametrize("key", LIMITS)
def test_the_schema_accepts_each_limit_and_refuses_one_more(key):
    assert configs.resolve(config_with(**{key: LIMITS[key]}))[key] == LIMITS[key]
    with pytest.raises(UserError) as refused:
        configs.resolve(config_with(**{key: LIMITS[key] + 1}), "posted config")
    message = str(refused.value)
    assert message.startswith(f"posted config: {key} = {LIMITS[key] + 1}: ")
    assert f"greater than the maximum of {LIMITS[key]}" in message and "\n" not in message


def test_the_option_listing_states_the_limits():
    listing = "\n".join(configs.option_lines())
    assert "image_size  (integer/null, 8 to 1024; default null)" in listing
    assert "batch_size  (integer, 1 to 4096; default 64)" in listing
    assert "sample_rows  (integer, 1 to 32; default 8)" in listing
    assert "top_k_fraction  (number, above 0, at most 1; default 1.0)" in listing
    assert "label_smoothing  (number, at least 0, below 1; default 0.0)" in listing


@pytest.mark.parametrize("changes", [{"image_size": 100_000}, {"batch_size": 100_000},
                                     {"sample_rows": 10_000, "sample_columns": 10_000}])
def test_the_server_refuses_oversized_configs_with_a_400(tmp_path, data_root, changes):
    queue = JobQueue(tmp_path / "runs")
    client = create_app(tmp_path / "runs", data_root, jobs=queue).test_client()
    try:
        answer = client.post("/api/jobs", json=config_with(**changes))
        assert answer.status_code == 400
        assert "is greater than the maximum of" in answer.get_json()["error"]
        assert client.get("/api/jobs").get_json()["jobs"] == []
    finally:
        queue.close()


def test_the_trainer_refuses_an_oversized_config_with_one_line(tmp_path, data_root):
    config = tmp_path / "big.json"
    config.write_text(json.dumps(config_with(data_path=str(data_root / "tiny.npz"), image_size=65536)))
    trained = subprocess.run(
        [sys.executable, "-m", "models.train", "--config", str(config), "--runs-dir", str(tmp_path / "runs")],
        cwd=PROJECT_ROOT, env=trainer_env(), capture_output=True, text=True, timeout=120,
    )
    assert trained.returncode == 2
    assert trained.stderr.startswith(f"models.train: error: {config}: image_size = 65536: 65536 is greater than "
                                     "the maximum of 1024")
    assert trained.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()


NETWORK_LIMITS = {"width": 4096, "max_width": 4096, "embedding_dim": 1024, "base_width": 4096, "kernel_size": 31}


@pytest.mark.parametrize("key", NETWORK_LIMITS)
def test_network_sizes_have_limits_too(key):
    config = config_with()
    config["generator"] = {**config["generator"], key: NETWORK_LIMITS[key] + 1}
    with pytest.raises(UserError) as refused:
        configs.resolve(config, "posted config")
    assert f"generator.{key} = {NETWORK_LIMITS[key] + 1}" in str(refused.value)
    config["discriminator"] = {**config["discriminator"], "widths": [8] * 65}
    config["generator"][key] = NETWORK_LIMITS[key]
    with pytest.raises(UserError, match="discriminator.widths"):
        configs.resolve(config, "posted config")
