"""palette_background 'auto': the default logo preset fixes the canvas colour that the data shares, and learns it
per image when the logos lie on tiles of many colours; with the shapes renderer's floor under the mark (an image
whose parts leave nothing draws the part most inclined to add), a folder of mixed logos trains without blank
samples."""
from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.data import shared_background
from models.networks.shapes import MIN_MARK_SHARE, PARAMETERS, ShapeRenderer
from models.sample_health import blank_share
from tests.models.helpers import run_module
from tests.models.test_shapes import at, primitive
from tests.models.test_shapes import mark as rendered

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
    samples = np.stack([np.asarray(Image.open(path)) for path in sorted((tmp_path / "samples").iterdir())])
    assert samples.shape == (64, 56, 56, 3)
    assert blank_share(samples) == 0.0


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


def leaning_to_add(values: list[float]) -> list[float]:
    """``values`` (a primitive whose mode is not add) with the highest weight on "add" of the scene's parts."""
    values = list(values)
    values[PARAMETERS.index("add")] = 4.0
    return values


def test_parts_that_leave_no_mark_draw_the_one_most_inclined_to_add_uncarved():
    away = primitive(centre=(-0.4, -0.3), half=(0.25, 0.25), mode="carve")
    leaning = leaning_to_add(primitive(centre=(0.4, 0.3), half=(0.25, 0.25), mode="carve"))
    every_part_carves = rendered(away, leaning)
    assert at(every_part_carves, 0.4, 0.3) > 0.99 and at(every_part_carves, -0.4, -0.3) < 0.01
    assert every_part_carves.sum() == pytest.approx(np.pi * (0.25 * 28) ** 2, rel=0.03)  # the leaning disc
    assert rendered(primitive(mode="off")).max() > 0.99  # a lone part that is off

    adding, covering = primitive(half=(0.3, 0.3)), primitive(half=(0.7, 0.7), mode="carve")
    carved_away = rendered(adding, covering)
    assert at(carved_away, 0, 0) > 0.99 and at(carved_away, 0.5, 0) < 0.01 and carved_away.sum() > 200

    # A mark of more than MIN_MARK_SHARE of the canvas is drawn as its parts' modes say: a hole stays a hole.
    ring = rendered(primitive(half=(0.6, 0.6)), primitive(half=(0.3, 0.3), mode="carve"))
    assert ring.mean() > MIN_MARK_SHARE and at(ring, 0, 0) < 0.01 and at(ring, 0.45, 0) > 0.99


def test_an_image_left_empty_gets_a_gradient_that_moves_its_floor_part():
    """Without the floor nothing is drawn, so no parameter has a gradient and the image stays blank for good."""
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient is taken with TensorFlow's tape")
    scene = [primitive(centre=(-0.4, 0.0), half=(0.2, 0.2), mode="carve"),
             leaning_to_add(primitive(centre=(0.3, 0.0), half=(0.2, 0.2), mode="off"))]
    raw = tf.Variable(np.array([scene], dtype="float32"))
    columns = tf.reshape(tf.range(56, dtype=tf.float32), (1, 1, 56))
    with tf.GradientTape() as tape:
        share = tf.nn.softmax(ShapeRenderer(56, 56)(raw), axis=-1)[..., 1]
        loss = -tf.reduce_sum(share * columns)  # wants the mark further right
    gradient = tape.gradient(loss, raw).numpy()[0]
    assert gradient[1, PARAMETERS.index("centre_x")] < -1.0
    assert gradient[1, PARAMETERS.index("add")] < 0.0  # more mark: the leaning part's "add" grows
