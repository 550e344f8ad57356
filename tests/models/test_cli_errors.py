"""The model commands check a user's input before Keras loads: importing TensorFlow can print lines of its own
(no CUDA driver, CPU features), and a mistake must still be reported as one line, and at once."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.models.helpers import make_dataset, subprocess_env, tiny_config, write_config

# Runs a command's main as ``python -m`` would, then says whether Keras was imported by the time it exited.
KERAS_LOADED_AT_EXIT = (
    "import atexit, importlib, sys; atexit.register(lambda: print('keras' in sys.modules)); "
    "from infra import cli; cli.run(importlib.import_module(sys.argv[1]).main, sys.argv[2:])"
)


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path / "c.json", tiny_config(make_dataset(tmp_path / "squares.npz")))


@pytest.mark.parametrize(
    ("module", "flags", "message"),
    [
        ("models.train", ["--config", "{config}", "--data", "nowhere.npz"], "nowhere.npz: no such dataset file"),
        ("models.train", ["--config", "{config}", "--set", "generator.choice=xgan"], '"xgan" is not allowed'),
        ("models.train", ["--config", "{config}", "--data", "{tiny}"],
         "images of 4x4 px are too small to train on; use 8x8 px or more"),  # a 1x1 GAN once trained, on nothing
        ("models.train", ["--config", "{config}", "--set", "image_size=4"], "4 is less than the minimum of 8"),
        ("models.evaluate", ["--run", "nowhere", "--metrics", "fid,is"], "unknown metric is; choose from fid"),
        ("models.evaluate", ["--run", "nowhere"], "--run nowhere: no config.json there"),
        ("models.generate", ["--run", "nowhere", "--out", "grid.png"], "nowhere: not a run folder"),
        ("models.generate", ["--run", "nowhere", "--out", "walk.gif"],
         "--out walk.gif: generate writes a .png grid or a folder of images (--format png or svg), not a .gif file"),
    ],
)
def test_bad_input_is_one_line_before_keras_loads(module, flags, message, config, tmp_path):
    tiny = make_dataset(tmp_path / "tiny.npz", size=4)
    argv = [flag.format(config=config, tiny=tiny) for flag in flags]
    result = subprocess.run([sys.executable, "-c", KERAS_LOADED_AT_EXIT, module, *argv], cwd=tmp_path,
                            env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout.strip() == "False"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and ": error: " in lines[0] and message in lines[0], result.stderr
