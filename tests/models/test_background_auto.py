"""palette_background 'auto': the default logo preset fixes the canvas colour that the data shares, and learns it
per image when the logos lie on tiles of many colours, so a folder of mixed logos trains without blank samples."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.data import shared_background
from tests.models.helpers import run_module

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BLANK_SPREAD = 4.0  # pixel standard deviation (of 255 levels) under which a sample shows nothing


def default_preset() -> Path:
    """The config ./run-model.sh trains by default."""
    name = re.search(r"^DEFAULT_CONFIG=(\S+)$", (PROJECT_ROOT / "run-model.sh").read_text(), re.M).group(1)
    return PROJECT_ROOT / "configs" / f"{name}.json"


def mark(size: int, colour, background, seed: int) -> Image.Image:
    """A disc and a bar in ``colour`` on a full ``background``; position and size vary with ``seed``."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    low, high = sorted(rng.integers(size // 6, 5 * size // 6, 2))
    draw.ellipse((low, low, max(high, low + 8), max(high, low + 8)), fill=colour)
    draw.rectangle((size // 8, size // 2 - 3, 7 * size // 8, size // 2 + 3), fill=colour)
    return image


def mixed_folder(folder: Path, count: int = 48) -> Path:
    """Half the logos on white, half on tiles of several colours; PNG, JPEG and SVG."""
    folder.mkdir(parents=True)
    tiles = [(30, 90, 200), (220, 60, 40), (20, 150, 90), (40, 40, 40)]
    for index in range(count):
        on_tile = index % 2 == 1
        background = tiles[index % len(tiles)] if on_tile else (255, 255, 255)
        colour = (255, 255, 255) if on_tile else tiles[index % len(tiles)]
        image = mark(64, colour, background, index)
        if index % 6 == 4:
            image.save(folder / f"logo{index}.jpg", quality=95)
        elif index % 6 == 2:
            fill = "#%02x%02x%02x" % colour
            (folder / f"logo{index}.svg").write_text(
                f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><circle cx="{20 + index % 20}" '
                f'cy="30" r="14" fill="{fill}"/><rect x="8" y="40" width="48" height="8" fill="{fill}"/></svg>')
        else:
            image.save(folder / f"logo{index}.png")
    return folder


def test_the_shared_border_colour_is_found_and_tiles_of_many_colours_give_none():
    white = np.full((10, 16, 16, 3), 255, np.uint8)
    white[:, 5:11, 5:11] = (200, 0, 0)
    assert shared_background(white) == ("#ffffff", 1.0)
    tiles = white.copy()
    tiles[5:] = (0, 90, 200)  # half of them: a blue tile to the edge
    colour, share = shared_background(tiles)
    assert colour is None and share == pytest.approx(0.5)
    grey = np.full((4, 8, 8, 1), 17, np.uint8)
    assert shared_background(grey) == ("#111111", 1.0)


def test_the_default_preset_trains_on_a_mixed_folder_without_blank_samples(tmp_path):
    folder = mixed_folder(tmp_path / "logos")
    env = {"LOGOGAN_CACHE_DIR": str(tmp_path / "cache")}
    trained = run_module("models.train", "--config", str(default_preset()), "--data", str(folder), "--steps", "300",
                         "--name", "mixed", "--runs-dir", str(tmp_path / "runs"), "--no-progress",
                         "--set", "sample_interval=100", "--set", "checkpoint_interval=300", timeout=600, **env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "palette_background auto: null, learned per image" in trained.stderr
    config = json.loads((tmp_path / "runs" / "mixed" / "config.json").read_text())
    assert config["generator"]["palette_background"] is None
    generated = run_module("models.generate", "--run", str(tmp_path / "runs" / "mixed"), "--n", "64", "--seed", "0",
                           "--out", str(tmp_path / "samples"), **env)
    assert generated.returncode == 0, generated.stderr[-2000:]
    spreads = [np.asarray(Image.open(path), "float32").std() for path in sorted((tmp_path / "samples").iterdir())]
    assert len(spreads) == 64 and sum(spread < BLANK_SPREAD for spread in spreads) <= 3  # at most 5% blank


def test_logos_on_white_keep_a_fixed_white_canvas(tmp_path):
    folder = tmp_path / "white"
    folder.mkdir()
    for index in range(12):
        mark(48, (200, 30 * (index % 8), 40), (255, 255, 255), index).save(folder / f"w{index}.png")
    trained = run_module("models.train", "--config", str(default_preset()), "--data", str(folder), "--steps", "2",
                         "--name", "white", "--runs-dir", str(tmp_path / "runs"), "--no-progress",
                         LOGOGAN_CACHE_DIR=str(tmp_path / "cache"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "palette_background auto: #ffffff (100% of the images lie on it)" in trained.stderr
    config = json.loads((tmp_path / "runs" / "white" / "config.json").read_text())
    assert config["generator"]["palette_background"] == "#ffffff"
