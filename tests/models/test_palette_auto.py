"""generator.palette 'auto': the vector preset paints from two colours when the data's marks have one (icons) and
from four when they have several (brand logos in their own colours), decided from the data when a run starts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.config.defaults import AUTO_PALETTE_MULTI, AUTO_PALETTE_SINGLE, MULTI_COLOUR_SHARE
from models.data import multi_colour_share
from tests.models.helpers import run_module

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VECTOR_PRESET = PROJECT_ROOT / "configs" / "logos_vector.json"


def logo(seed: int, colours: list[tuple], background=(255, 255, 255), size: int = 56) -> Image.Image:
    """A disc and a bar, drawn at 4x and shrunk (anti-aliased edges); the disc in colours[0], the bar in the last.
    Where and how large they are, and whether the bar lies or stands, vary with ``seed``."""
    rng = np.random.default_rng(seed)
    big = size * 4
    image = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(image)
    left, top = rng.integers(big // 10, big // 2, 2)
    diameter = int(rng.integers(big // 4, big // 2))
    draw.ellipse((left, top, left + diameter, top + diameter), fill=colours[0])
    start, across = int(rng.integers(big // 4, 3 * big // 4)), (big // 10, 9 * big // 10)
    bar = (across[0], start, across[1], start + big // 10)
    draw.rectangle(bar if seed % 2 else (bar[1], bar[0], bar[3], bar[2]), fill=colours[-1])
    return image.resize((size, size), Image.Resampling.LANCZOS)


def stack(images: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(image) for image in images])


def test_one_colour_marks_count_as_single_and_two_colour_marks_as_multi():
    one = stack([logo(seed, [(20, 60, 200)]) for seed in range(8)])
    assert multi_colour_share(one) == 0.0  # the anti-aliased edges are no second colour
    two = stack([logo(seed, [(20, 60, 200), (230, 40, 30)]) for seed in range(8)])
    assert multi_colour_share(two) == 1.0
    # A white mark on a tile that fills the image is one colour on its background.
    tiled = stack([logo(seed, [(255, 255, 255)], background=(30, 120, 60)) for seed in range(8)])
    assert multi_colour_share(tiled) == 0.0
    # A white bar across a red disc on a white canvas: two colours in all, which a palette of two paints (the bar
    # carves through to the background), so one colour on its background.
    carved = stack([logo(seed, [(200, 40, 40), (255, 255, 255)]) for seed in range(4)])
    assert multi_colour_share(carved) == 0.0
    assert multi_colour_share(np.concatenate([one[:6], two[:2]])) == pytest.approx(0.25)
    grey = stack([logo(seed, [(40, 40, 40)]).convert("L") for seed in range(4)])[..., None]
    assert multi_colour_share(grey) == 0.0
    assert multi_colour_share(np.full((3, 16, 16, 3), 255, np.uint8)) == 0.0  # no mark at all


def folder_of(tmp_path: Path, name: str, multi: int, count: int = 12) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for index in range(count):
        colours = [(20, 60, 200), (230, 40, 30)] if index < multi else [(20 * (index % 8), 60, 200)]
        logo(index, colours).save(folder / f"logo{index}.png")
    return folder


@pytest.mark.parametrize("multi, expected", [(2, AUTO_PALETTE_SINGLE), (6, AUTO_PALETTE_MULTI)])
def test_a_run_settles_the_palette_from_its_data_and_saves_it(tmp_path, multi, expected):
    assert multi / 12 < MULTI_COLOUR_SHARE if expected == AUTO_PALETTE_SINGLE else multi / 12 >= MULTI_COLOUR_SHARE
    assert json.loads(VECTOR_PRESET.read_text())["generator"]["palette"] == "auto"
    folder = folder_of(tmp_path, "logos", multi)
    trained = run_module("models.train", "--config", str(VECTOR_PRESET), "--data", str(folder), "--steps", "2",
                         "--name", "auto", "--runs-dir", str(tmp_path / "runs"), "--no-progress",
                         LOGOGAN_CACHE_DIR=str(tmp_path / "cache"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert f"palette auto: {expected} ({multi / 12:.0%} of the images have a mark of two or more colours" \
        in trained.stderr
    run = tmp_path / "runs" / "auto"
    assert json.loads((run / "config.json").read_text())["generator"]["palette"] == expected
    # The run's generator paints from that many entries: --colours takes that many (or one fewer), no other count.
    colours = ",".join(["#e11d48", "#111827", "#22c55e", "#f59e0b"][:expected])
    painted = run_module("models.generate", "--run", str(run), "--n", "2", "--colours", colours,
                         "--out", str(tmp_path / "painted"), LOGOGAN_CACHE_DIR=str(tmp_path / "cache"))
    assert painted.returncode == 0, painted.stderr[-2000:]
    refused = run_module("models.generate", "--run", str(run), "--n", "2", "--colours", colours + ",#000000",
                         "--out", str(tmp_path / "refused"), LOGOGAN_CACHE_DIR=str(tmp_path / "cache"))
    assert refused.returncode == 2 and f"for a palette of {expected}" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_auto_is_refused_outside_the_vector_generator(tmp_path):
    config = json.loads((PROJECT_ROOT / "configs" / "logos_shapes.json").read_text())
    config["generator"]["palette"] = "auto"
    path = tmp_path / "shapes_auto.json"
    path.write_text(json.dumps(config))
    trained = run_module("models.train", "--config", str(path), "--data", str(folder_of(tmp_path, "logos", 0)),
                         "--steps", "1", "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert trained.returncode == 2
    assert trained.stderr.strip().splitlines() == [
        f"models.train: error: {path}: generator.palette: 'auto' (a palette of {AUTO_PALETTE_SINGLE} or "
        f"{AUTO_PALETTE_MULTI}, from the data's colours) is for architecture 'vector'; with 'shapes' set a number "
        "of entries (2 or more) or null"
    ]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
