"""Tiny real runs shared by the serving tests: a 16-px, 10-class dataset and one conditional run, trained
once per session by the real trainer CLI (a few steps)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from models.data import FASHION_MNIST_CLASSES
from models.serve.app import create_app
from preprocessing.dataset import save_dataset

PROJECT_ROOT = Path(__file__).resolve().parents[2]
IMAGE_SIZE = 16  # the smallest size whose generator still upsamples twice from the 4-px base
RUN = "fashion"
RUN_STEPS = 60  # enough, at a high learning rate, for the stripes of the data to show in the screenshot
SEED = 7


def trainer_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def tiny_config(data_path: str, conditional: bool = True, steps: int = 4) -> dict:
    choice = "cgan" if conditional else "dcgan"
    return {
        "generator": {"choice": choice, "width": 8, "optimizer": {"learning_rate": 2e-3}},
        "discriminator": {"choice": choice, "width": 8, "optimizer": {"learning_rate": 2e-3}},
        "data_path": data_path,
        "steps": steps,
        "batch_size": 8,
        "latent_dim": 8,
        "log_interval": 1,
        "sample_interval": max(2, steps // 2),
        "checkpoint_interval": 1000,
        "sample_rows": len(FASHION_MNIST_CLASSES) if conditional else 2,
        "sample_columns": 2,
        "tensorboard": False,
        "deterministic": False,
    }


def wait_for(condition, timeout: float, what: str):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def start_server(runs: Path, data_root: Path, log: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """``python -m models.serve`` (with ``flags``) on a free loopback port, its stderr in ``log``; returns it
    and its URL."""
    with open(log, "w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "models.serve", "--runs", str(runs), "--data-root", str(data_root), "--port", "0",
             *flags],
            cwd=PROJECT_ROOT, env=trainer_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        address = wait_for(lambda: re.search(r"http://127\.0\.0\.1:\d+", log.read_text()), 60, "the server to listen")
    except BaseException:
        server.kill()
        server.wait(timeout=30)
        raise
    return server, address.group(0)


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM, as a service manager stops it, and wait; SIGKILL should it not stop."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


def loopback_session():
    """A requests session that never goes through a proxy (loopback only)."""
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A data root holding tiny.npz: 40 grey 16-px images, 4 per Fashion-MNIST class (a bright stripe each)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    labels = np.arange(40) % len(FASHION_MNIST_CLASSES)
    images = rng.integers(0, 60, (40, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8)
    for image, label in zip(images, labels):
        image[:, label : label + 4] = 230
    save_dataset(root / "tiny.npz", images, labels, FASHION_MNIST_CLASSES)
    return root


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory, data_root) -> Path:
    """A runs folder with one finished conditional run, ``fashion``, trained by ``python -m models.train``."""
    runs = tmp_path_factory.mktemp("runs")
    config = runs.parent / "fashion.json"
    config.write_text(json.dumps(tiny_config(str(data_root / "tiny.npz"), steps=RUN_STEPS)))
    trained = subprocess.run(
        [sys.executable, "-m", "models.train", "--config", str(config), "--name", RUN, "--runs-dir", str(runs),
         "--no-progress"],
        cwd=PROJECT_ROOT, env=trainer_env(), capture_output=True, text=True, timeout=300,
    )
    assert trained.returncode == 0, f"the trainer failed:\n{trained.stderr[-3000:]}"
    return runs


@pytest.fixture(scope="session")
def app(runs_dir, data_root):
    return create_app(runs_dir, data_root)


@pytest.fixture
def client(app):
    return app.test_client()
