"""The default dataset: rendering Simple Icons in brand colours and packing them."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from infra.errors import UserError
from infra.icons import parse_hex_colour, render_svg
from preprocessing import simple_icons
from preprocessing.dataset import load_dataset

WIDE_BAR = '<svg viewBox="0 0 20 10" xmlns="http://www.w3.org/2000/svg"><rect width="20" height="10"/></svg>'


def test_render_fills_with_the_colour_on_white():
    image = np.asarray(render_svg(WIDE_BAR, 40, fill="#1E90FF"))
    assert image.shape == (40, 40, 3) and image.dtype == np.uint8
    assert tuple(image[20, 20]) == (0x1E, 0x90, 0xFF)
    assert tuple(image[2, 2]) == (255, 255, 255)


def test_render_keeps_aspect_ratio_and_centres():
    image = np.asarray(render_svg(WIDE_BAR, 40, fill="#000000"))
    rows, cols = np.nonzero(image[..., 0] < 128)
    assert (cols.min(), cols.max()) == (0, 39)
    assert (rows.min(), rows.max()) == (10, 29)


def test_render_margin_and_transparent_background():
    image = np.asarray(render_svg(WIDE_BAR, 40, fill="#000000", background=None, margin=0.25))
    assert image.shape == (40, 40, 4)
    rows, cols = np.nonzero(image[..., 3] > 128)
    assert (cols.min(), cols.max()) == (10, 29)
    assert image[0, 0, 3] == 0


def test_packed_dataset_has_brand_colours_and_meta(tmp_path):
    out = tmp_path / "icons.npz"
    assert simple_icons.main(["--size", "32", "--limit", "12", "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    dataset = load_dataset(out)
    assert out.stat().st_mode & 0o044 == 0o044  # readable by others, like any file the user writes
    with Image.open(tmp_path / "icons.contact.png") as sheet:
        assert sheet.mode == "RGB" and sheet.width >= 8 * 32 and sheet.height >= 2 * 32  # 12 tiles: 8 + 4
    assert dataset.x.shape == (12, 32, 32, 3) and dataset.x.dtype == np.uint8
    assert dataset.y is None and dataset.class_names is None
    meta = dataset.meta
    assert meta["count"] == 12 and len(meta["slugs"]) == 12
    assert meta["slugs"] == sorted(meta["slugs"])
    assert meta["source"].startswith("simple-icons-pack ")
    assert "trademarks" in meta["licence"]
    for image, colour in zip(dataset.x, meta["colours"]):
        assert tuple(image[0, 0]) == (255, 255, 255)  # white margin
        # Antialiasing blends brand colour into white, so every pixel lies on the white-to-brand segment.
        white, brand = np.full(3, 255.0), np.array(parse_hex_colour(colour), dtype=float)
        pixels = image.reshape(-1, 3).astype(float)
        share = np.clip((pixels - white) @ (brand - white) / max((brand - white) @ (brand - white), 1), 0, 1)
        off_line = np.linalg.norm(pixels - (white + share[:, None] * (brand - white)), axis=1)
        assert off_line.max() < 4, f"{colour}: a pixel is not a blend of the brand colour and white"
        if np.abs(brand - white).sum() > 60:
            assert share.max() > 0.9, f"{colour} never reaches full strength"


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--size", "4"], "--size 4 is too small"), (["--margin", "0.6"], "--margin 0.6 is outside"), (["--limit", "0"], "--limit 0")],
)
def test_bad_flags_are_refused(flags, message, tmp_path):
    with pytest.raises(UserError, match=message):
        simple_icons.main([*flags, "--out", str(tmp_path / "x.npz")])
    assert not (tmp_path / "x.npz").exists()


def test_bad_flag_from_the_command_line_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "preprocessing.simple_icons", "--size", "4"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "preprocessing.simple_icons: error: --size 4 is too small; use 8 or more"
