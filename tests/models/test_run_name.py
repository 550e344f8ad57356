"""A run's name is one folder inside --runs-dir: names that would lead elsewhere are refused before anything
is written (and before Keras loads)."""
from __future__ import annotations

import json

import pytest

from infra.errors import UserError
from models import train
from tests.models.helpers import make_dataset, tiny_config, write_config


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../escaped", "/tmp/x", "", "a\\b"])
def test_a_name_that_is_not_one_folder_is_refused(tmp_path, name):
    config = write_config(tmp_path / "c.json", tiny_config(make_dataset(tmp_path / "data" / "squares.npz")))
    runs = tmp_path / "box" / "runs"
    runs.mkdir(parents=True)
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    with pytest.raises(UserError, match="--name|name") as refused:
        train.main(["--config", str(config), "--runs-dir", str(runs), "--name", name, "--steps", "1"])
    assert "\n" not in str(refused.value) and "one folder name" in str(refused.value)
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before


def test_a_config_whose_name_is_dot_dot_is_refused(tmp_path):
    settings = tiny_config(make_dataset(tmp_path / "squares.npz"), name="..", runs_dir=str(tmp_path / "runs"))
    config = write_config(tmp_path / "c.json", settings)
    with pytest.raises(UserError, match="one folder name"):
        train.main(["--config", str(config), "--steps", "1"])
    assert not (tmp_path / "config.json").exists() and json.loads(config.read_text())["name"] == ".."
