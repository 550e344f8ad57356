"""Trim, pad, crop and resize: where the content lands and what fills the rest."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from preprocessing.geometry import background_colour, content_box, square_and_resize
from preprocessing.images import SkippedImage


def dark_extent(image: Image.Image) -> tuple[tuple[int, int], tuple[int, int]]:
    rows, cols = np.nonzero(np.asarray(image.convert("L")) < 128)
    return (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max()))


def rectangle_on_white(size=(100, 100), box=(60, 10, 80, 50)) -> Image.Image:
    image = Image.new("RGB", size, (255, 255, 255))
    ImageDraw.Draw(image).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(0, 0, 0))
    return image


def test_trim_centres_the_content_with_the_margin():
    image = rectangle_on_white()  # 20 wide, 40 tall, off centre
    assert content_box(image, (255, 255, 255), 12) == (60, 10, 80, 50)
    out = square_and_resize(image, 40, "pad", trim=True, margin=0.1)
    # The long side (40 px tall) fills 40 * (1 - 2 * 0.1) = 32 px; the short side 16 px, both centred.
    assert dark_extent(out) == ((4, 35), (12, 27))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_without_trim_the_whole_image_is_padded_to_square():
    wide = rectangle_on_white(size=(100, 50), box=(10, 10, 90, 40))
    out = square_and_resize(wide, 20, "pad")
    # Scaled by 0.2 to 20x10, placed at rows 5..14; the rectangle lands at rows 7..12, columns 2..17.
    assert dark_extent(out) == ((7, 12), (2, 17))
    assert (np.asarray(out)[:5] == 255).all() and (np.asarray(out)[15:] == 255).all()


def test_crop_takes_the_centre_square():
    image = Image.new("RGB", (120, 40), (0, 0, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 59, 39), fill=(255, 0, 0))
    out = np.asarray(square_and_resize(image, 10, "crop"))
    assert out[5, 0].tolist() == [255, 0, 0] and out[5, 9].tolist() == [0, 0, 255]


def test_padding_uses_the_images_own_background():
    image = Image.new("RGB", (60, 30), (10, 120, 10))
    ImageDraw.Draw(image).ellipse((20, 5, 40, 25), fill=(250, 250, 0))
    assert background_colour(np.asarray(image)) == (10, 120, 10)
    out = square_and_resize(image, 30, "pad")
    assert out.getpixel((15, 0)) == (10, 120, 10)


def test_grey_images_stay_grey_and_blank_images_are_skipped():
    grey = rectangle_on_white().convert("L")
    out = square_and_resize(grey, 16, "pad", trim=True)
    assert out.mode == "L" and out.size == (16, 16)
    with pytest.raises(SkippedImage) as skipped:
        square_and_resize(Image.new("RGB", (30, 30), (200, 200, 200)), 16, trim=True)
    assert skipped.value.reason == "blank"
