"""The clean step: safe opening, every awkward mode, skip reasons, labels and credits."""
from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pytest
from PIL import Image

from infra.errors import UserError
from infra.icons import MAX_SVG_BYTES
from preprocessing import clean
from preprocessing.collection import scan_collection
from preprocessing.dataset import load_dataset
from preprocessing.images import SkippedImage, open_image, to_rgb_or_grey
from tests.preprocessing.image_fixtures import RED, logo, png_with_declared_size, write_awkward_folder


def cleaned_by_name(folder, **options):
    collection = scan_collection(folder, "none")
    result = clean.clean_collection(collection, clean.CleanOptions(**options), workers=1, progress=False)
    names = [collection.relative(collection.files[index]) for index in result.kept]
    return dict(zip(names, result.x)), result.skipped


def test_every_awkward_file_is_kept_or_skipped_with_its_reason(tmp_path):
    expected = write_awkward_folder(tmp_path / "in")
    kept, skipped = cleaned_by_name(tmp_path / "in", size=32)
    assert sorted(kept) == sorted(name for name, outcome in expected.items() if outcome == "kept")
    assert skipped == {
        reason: sorted(name for name, outcome in expected.items() if outcome == reason)
        for reason in set(expected.values()) - {"kept"}
    }
    for image in kept.values():
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8


def test_modes_are_flattened_onto_white_with_their_colours(tmp_path):
    write_awkward_folder(tmp_path / "in")
    kept, _ = cleaned_by_name(tmp_path / "in", size=32)
    for name in ("rgba_logo.png", "palette.png", "grey_alpha.png", "cmyk.jpg"):
        assert kept[name][0, 0].tolist() == [255, 255, 255], name  # transparency / paper became white
    assert np.abs(kept["rgba_logo.png"][16, 16].astype(int) - RED).max() <= 2
    assert kept["palette.png"][16, 16].tolist() == [30, 60, 200]
    cyan = kept["cmyk.jpg"][16, 16].astype(int)
    assert cyan[0] < 30 and cyan[1] > 225 and cyan[2] > 225
    grey = kept["grey16.png"][..., 0]
    assert grey.min() < 10 and grey.max() > 245  # scaled from 16 bits, not clipped to white
    assert (kept["grey16.png"][..., 0] == kept["grey16.png"][..., 2]).all()


def test_grayscale_gives_one_channel(tmp_path):
    logo().save(tmp_path / "a.png")
    kept, _ = cleaned_by_name(tmp_path, size=16, grayscale=True)
    image = kept["a.png"]
    assert image.shape == (16, 16, 1) and image[0, 0, 0] == 255 and image[8, 8, 0] < 128


def test_bomb_limit_is_an_error_even_below_pillows_hard_limit():
    with pytest.raises(SkippedImage) as skipped:
        open_image(png_with_declared_size(100, 100), max_pixels=6000)  # 10,000 px: Pillow would only warn
    assert skipped.value.reason == "decompression bomb"
    buffer = io.BytesIO()
    Image.new("RGB", (50, 50)).save(buffer, format="PNG")
    assert open_image(buffer.getvalue(), max_pixels=6000).size == (50, 50)  # 2,500 px: under the limit


def test_sixteen_bit_conversion_scales_values():
    gradient = np.array([[0, 257, 65535]], dtype=np.uint16)
    image = to_rgb_or_grey(Image.fromarray(gradient), grayscale=True)
    assert np.asarray(image).tolist() == [[0, 1, 255]]


def test_class_subfolders_become_labels_and_manifest_gives_credits(tmp_path):
    root = tmp_path / "collection"
    for folder, colour in (("bags", (0, 0, 200)), ("shoes", (0, 150, 0))):
        (root / folder).mkdir(parents=True)
        for index in range(2):
            logo(40 + 8 * index, colour=colour).save(root / folder / f"{index}.png")
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "source_url", "sha1", "licence", "artist"])
        writer.writerow(["bags/0.png", "https://example.org/b0", "x", "CC0-1.0", "Ann"])
        writer.writerow(["shoes/1.png", "https://example.org/s1", "y", "CC-BY-4.0", "Bo"])
    out = tmp_path / "labelled.npz"
    assert clean.main(["--input", str(root), "--size", "16", "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    dataset = load_dataset(out)
    assert dataset.class_names == ["bags", "shoes"]
    assert dataset.y.tolist() == [0, 0, 1, 1]
    assert dataset.meta["sources"] == ["bags/0.png", "bags/1.png", "shoes/0.png", "shoes/1.png"]
    assert dataset.meta["credits"][0] == {"source_url": "https://example.org/b0", "licence": "CC0-1.0", "artist": "Ann"}
    assert dataset.meta["credits"][1] == {}
    assert dataset.meta["licences"] == {"CC-BY-4.0": 1, "CC0-1.0": 1, "unknown": 2}
    assert dataset.meta["ignored_non_images"] == {".csv": 1}
    assert (tmp_path / "labelled.contact.png").is_file()


def test_bad_flags_and_inputs_are_one_line_errors(tmp_path):
    logo().save(tmp_path / "a.png")
    out = str(tmp_path / "o.npz")
    with pytest.raises(UserError, match="--size 4 is too small"):
        clean.main(["--input", str(tmp_path), "--size", "4", "--out", out])
    with pytest.raises(UserError, match="no such folder"):
        clean.main(["--input", str(tmp_path / "missing"), "--out", out])
    with pytest.raises(UserError, match="must end in .npz"):
        clean.main(["--input", str(tmp_path), "--out", str(tmp_path / "o.pkl")])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"nope")
    with pytest.raises(UserError, match=r"no usable images \(skipped 1: 1 not an image \(\.png\)\)"):
        clean.main(["--input", str(broken), "--out", out, "--workers", "1", "--no-progress"])


def test_the_pixel_limit_does_not_leak_into_pillow():
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(SkippedImage):
        open_image(png_with_declared_size(100, 100), max_pixels=6000)
    assert Image.MAX_IMAGE_PIXELS == before


WHITE_F = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
           '<path d="M4 4h16v4H8v4h8v4H8v4H4z" fill="#fff"/></svg>')
TWO_COLOURS = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="12" cy="12" r="9" fill="#d11"/>'
               '<rect x="8" y="8" width="8" height="8" fill="#11d"/></svg>')


def test_light_marks_go_on_black_and_blank_images_are_skipped(tmp_path):
    logo(colour=(255, 255, 255, 255)).save(tmp_path / "white_on_clear.png")  # a logo for dark backgrounds
    (tmp_path / "white_f.svg").write_text(WHITE_F)
    logo(colour=(250, 250, 250, 255), background=(255, 255, 255, 255)).save(tmp_path / "white_on_white.png")
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("RGB", (64, 64), (40, 90, 200)).save(tmp_path / "swatch.png")  # a brand-colour swatch, no mark
    logo().save(tmp_path / "red.png")
    kept, skipped = cleaned_by_name(tmp_path, size=32)
    assert skipped == {"blank": ["clear.png", "swatch.png", "white_on_white.png"]}
    for name in ("white_on_clear.png", "white_f.svg"):
        image = kept[name].astype(int)
        assert image[0, 0].tolist() == [0, 0, 0], name  # the canvas is black ...
        assert image.max() == 255, name  # ... and the mark white, as drawn
    assert kept["red.png"][0, 0].tolist() == [255, 255, 255]  # a mark that shows on white stays on white

    args = clean.parse_args(["--input", str(tmp_path), "--out", str(tmp_path / "out.npz"), "--size", "32",
                             "--workers", "1", "--no-progress"])
    dataset, summary = clean.clean_folders(args)
    assert summary == ("Cleaned 3 of 6 files; skipped 3: 3 blank (.png); "
                       "2 light marks on transparency put on black (1 .png, 1 .svg)")
    assert dataset.meta["on_black"] == ["white_f.svg", "white_on_clear.png"]


def test_svg_files_in_utf16_and_gzipped_render_like_utf8(tmp_path):
    (tmp_path / "plain.svg").write_text(TWO_COLOURS, encoding="utf-8")
    (tmp_path / "bom.svg").write_bytes(b"\xef\xbb\xbf" + TWO_COLOURS.encode())
    (tmp_path / "wide.svg").write_text(TWO_COLOURS, encoding="utf-16")  # with its byte-order mark
    (tmp_path / "packed.svgz").write_bytes(gzip.compress(TWO_COLOURS.encode()))
    # A gzip bomb: a few KB that unpack far beyond the SVG size limit; it stops at the limit.
    bomb = TWO_COLOURS[:-6] + "<!--" + " " * (MAX_SVG_BYTES + 10) + "--></svg>"
    (tmp_path / "bomb.svgz").write_bytes(gzip.compress(bomb.encode(), compresslevel=9))
    (tmp_path / "damaged.svgz").write_bytes(gzip.compress(TWO_COLOURS.encode())[:40])
    assert (tmp_path / "bomb.svgz").stat().st_size < 20_000
    kept, skipped = cleaned_by_name(tmp_path, size=32)
    assert skipped == {"SVG too large": ["bomb.svgz"], "corrupt": ["damaged.svgz"]}
    assert sorted(kept) == ["bom.svg", "packed.svgz", "plain.svg", "wide.svg"]
    for name in ("bom.svg", "packed.svgz", "wide.svg"):
        assert np.array_equal(kept[name], kept["plain.svg"]), name
    assert kept["plain.svg"][16, 16].tolist()[2] > 150 and kept["plain.svg"][16, 4].tolist()[0] > 150
