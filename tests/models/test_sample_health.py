"""A failing run says so: blank or collapsed sample grids warn once, a small dataset gets a hint at the start."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import sample_health, train, training_loop
from models.sample_health import (BLANK_STD, NEAR_IDENTICAL_RMS, WARMUP_STEPS, SampleHealth, blank_data_hint,
                                  blank_share, near_identical_share, small_dataset_hint)
from preprocessing.dataset import load_dataset
from tests.models.helpers import make_dataset, tiny_config, write_config


@pytest.fixture
def squares(tmp_path) -> np.ndarray:
    return load_dataset(make_dataset(tmp_path / "squares.npz", count=64, size=16)).x


def noise_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 16, 16, 3), dtype=np.uint8)


def test_blank_and_near_identical_measures(squares):
    white = np.full((64, 16, 16, 3), 255, np.uint8)
    assert blank_share(white) == 1.0 and near_identical_share(white) == 1.0
    assert blank_share(squares) == 0.0 and near_identical_share(squares) < 0.2
    # A faint texture below BLANK_STD still reads as one flat colour; one a little above it does not.
    rng = np.random.default_rng(1)
    faint = (200 + rng.choice([-1, 1], (64, 16, 16, 3)) * (BLANK_STD - 1)).astype(np.uint8)
    visible = (200 + rng.choice([-1, 1], (64, 16, 16, 3)) * (BLANK_STD + 1)).astype(np.uint8)
    assert blank_share(faint) == 1.0 and blank_share(visible) == 0.0
    # Three quarters of the samples one image, seen through a little noise: collapsed.
    one = noise_images(1)
    collapsed = np.concatenate([np.repeat(one, 48, axis=0), noise_images(16, seed=2)])
    jitter = rng.integers(-(NEAR_IDENTICAL_RMS // 2), NEAR_IDENTICAL_RMS // 2 + 1, collapsed.shape)
    collapsed = np.clip(collapsed.astype(int) + jitter, 0, 255).astype(np.uint8)
    assert blank_share(collapsed) == 0.0 and near_identical_share(collapsed) > 0.5


def test_warnings_name_the_cause_after_the_warm_up(squares):
    health = SampleHealth(squares, {"generator": {"palette_background": "#ffffff"}})
    white = np.full((64, 16, 16, 3), 255, np.uint8)
    assert health.check(white, WARMUP_STEPS - 1) is None
    warning = health.check(white, WARMUP_STEPS)
    assert warning.kind == "blank"
    assert warning.line.startswith(f"warning: 64 of 64 samples at step {WARMUP_STEPS} are blank")
    assert "--set generator.palette_background=null" in warning.line
    assert health.check(squares, WARMUP_STEPS) is None
    collapsed = health.check(np.repeat(noise_images(1), 64, axis=0), WARMUP_STEPS)
    assert collapsed.kind == "collapse" and "near-identical (100% of pairs)" in collapsed.line
    # A dataset of flat tiles is meant to give flat samples: no warning then.
    assert SampleHealth(white, {}).check(white, WARMUP_STEPS) is None


def test_a_small_dataset_gets_a_hint_unless_it_is_augmented():
    hint = small_dataset_hint(150, {}, conditional=False)
    assert hint.startswith("hint: 150 training images is few for a GAN") and "configs/logos_small_data.json" in hint
    assert "configs/fashion_small_data.json" in small_dataset_hint(150, {}, conditional=True)
    assert small_dataset_hint(sample_health.SMALL_DATASET, {}, conditional=False) is None
    assert small_dataset_hint(150, {"augment": {"policy": ["translation"]}}, conditional=False) is None


def train_drawing(tmp_path, monkeypatch, drawing, steps: int = 300) -> Path:
    """Train the tiny config for ``steps`` with the sample grids' images replaced by ``drawing(count)``."""
    monkeypatch.setattr(training_loop, "generate_uint8", lambda generator, noise, *args: drawing(len(noise)))
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), sample_interval=100, checkpoint_interval=1000,
                         log_interval=100, tensorboard=False, steps_per_call=10)
    config_path = write_config(tmp_path / "c.json", config)
    assert train.main(["--config", str(config_path), "--name", "r", "--runs-dir", str(tmp_path), "--steps",
                       str(steps), "--no-progress"]) == 0
    return tmp_path / "r"


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:")]


def test_mostly_blank_training_images_get_a_hint(squares):
    white = np.full((48, 16, 16, 3), 255, np.uint8)
    white[:, 3, 3] = 250  # a speck is still nothing drawn
    assert blank_data_hint(squares) is None
    assert blank_data_hint(np.concatenate([squares[:24], white[:20]])) is None  # under half
    hint = blank_data_hint(np.concatenate([squares[:8], white[:40]]))
    assert hint.startswith("hint: 83% of the training images are one flat colour (nothing drawn)")
    assert "python -m preprocessing.build puts them on black" in hint


def test_a_generator_that_draws_blank_tiles_warns_once(tmp_path, monkeypatch, capsys):
    run = train_drawing(tmp_path, monkeypatch, lambda count: np.full((count, 16, 16, 3), 255, np.uint8))
    lines = warning_lines(capsys.readouterr().err)  # grids at 100 (warm-up), 200 and 300: one line
    assert len(lines) == 1 and lines[0].startswith("warning: 8 of 8 samples at step 200 are blank")
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished"
    assert [line for line in status["warnings"] if line.startswith("warning:")] == [
        lines[0].replace("step 200", "step 300")]


def test_a_collapsed_generator_warns_and_a_recovered_one_clears_the_warning(tmp_path, monkeypatch, capsys):
    drawn = []

    def collapsed_then_recovered(count):
        drawn.append(count)
        return np.repeat(noise_images(1), count, axis=0) if len(drawn) < 3 else noise_images(count, seed=len(drawn))

    run = train_drawing(tmp_path, monkeypatch, collapsed_then_recovered, steps=400)
    lines = warning_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("warning: the samples at step 200 are near-identical")
    status = json.loads((run / "status.json").read_text())
    assert not [line for line in status.get("warnings", []) if line.startswith("warning:")]


def test_a_small_dataset_hint_is_printed_at_the_start_and_kept_in_the_status(tmp_path, capsys):
    config = tiny_config(make_dataset(tmp_path / "squares.npz", count=48), tensorboard=False)
    config_path = write_config(tmp_path / "c.json", config)
    assert train.main(["--config", str(config_path), "--name", "small", "--runs-dir", str(tmp_path), "--steps", "2",
                       "--no-progress"]) == 0
    hints = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hint:")]
    assert len(hints) == 1 and hints[0].startswith("hint: 48 training images is few for a GAN (under 500)")
    assert json.loads((tmp_path / "small" / "status.json").read_text())["warnings"] == hints
