"""Tiny datasets and configs that train in seconds, shared by the trainer's tests."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from preprocessing.dataset import save_dataset

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLASS_NAMES = ["red", "T-shirt/top", "blue"]


def load_script(path: Path, name: str):
    """Import a script that is not in a package (bench/*.py) as module ``name``, to test its functions."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_dataset(path: Path, count: int = 48, size: int = 16, channels: int = 3) -> Path:
    """Coloured squares whose colour is the class: easy to tell apart, quick to learn a little."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(CLASS_NAMES), count)
    colours = np.array([[220, 30, 30], [30, 200, 30], [30, 30, 220]], dtype=np.uint8)[:, :channels]
    images = np.full((count, size, size, channels), 255, dtype=np.uint8)
    for image, label in zip(images, labels):
        top, left = rng.integers(0, size // 2, 2)
        image[top:top + size // 2, left:left + size // 2] = colours[label]
    return save_dataset(path, images, labels, CLASS_NAMES)


def tiny_config(data_path: Path, generator: str = "dcgan", discriminator: str = "dcgan", **extra) -> dict:
    return {
        "generator": {"choice": generator, "width": 8, "embedding_dim": 4},
        "discriminator": {"choice": discriminator, "width": 8, "embedding_dim": 4},
        "data_path": str(data_path), "metric_evaluate": "none", "batch_size": 8, "latent_dim": 8,
        "log_interval": 2, "sample_interval": 3, "checkpoint_interval": 4, "sample_columns": 4,
        "sample_rows": 2, **extra,
    }


def write_config(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config))
    return path


def subprocess_env(**extra) -> dict:
    """This process's environment with ``extra`` on top; a variable given as None is left out."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(PROJECT_ROOT), **extra}
    return {name: value for name, value in environment.items() if value is not None}


def run_module(module: str, *args: str, timeout: int = 240, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=PROJECT_ROOT, env=subprocess_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def sample_in_plain_keras(cwd: Path, model_path: str, inputs: str, probe: str) -> str:
    """Load ``model_path`` in a Python without the project, call it on ``inputs`` (a Python expression) and
    return what it prints: the images' shape, whether all are finite, and ``probe`` evaluated on ``model`` and
    ``images``."""
    script = (f"import keras, numpy as np; model = keras.saving.load_model({model_path!r}); "
              f"images = keras.ops.convert_to_numpy(model({inputs})); "
              f"print(images.shape, bool(np.isfinite(images).all()), {probe})")
    result = run_without_the_project(script, cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def run_without_the_project(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python that cannot import the project, as a user of generator.keras would."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**environment, "TF_CPP_MIN_LOG_LEVEL": "2"})


class EagerNets:
    """The ``nets`` a loss function gets, calling the Keras models directly."""

    def __init__(self, generator, discriminator):
        self.generator, self.discriminator = generator, discriminator

    def generate(self, inputs):
        return self.generator(inputs, training=True)

    def discriminate(self, inputs):
        return self.discriminator(inputs, training=True)


def train_tiny_vector_run(folder: Path, steps: int = 3, name: str = "v", **extra) -> Path:
    """A vector generator (palette 3: a box, a path and a stroke) trained ``steps`` on coloured squares, with
    ``extra`` config keys; its run folder."""
    from models import train

    config = tiny_config(make_dataset(folder / "squares.npz"), tensorboard=False, **extra)
    config["generator"].update(architecture="vector", palette=3, vector_parts=["box", "path", "stroke"],
                               widths=[16])
    path = write_config(folder / "vector.json", config)
    assert train.main(["--config", str(path), "--steps", str(steps), "--name", name, "--runs-dir", str(folder),
                       "--no-progress"]) == 0
    return folder / name
