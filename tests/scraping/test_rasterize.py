"""SVG -> PNG: aspect ratio and centring, backgrounds, the packaged icon sets, bad and hostile SVGs."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from infra.errors import UserError
from infra.icons import parse_hex_colour, simple_icons
from scraping import rasterize
from tests.scraping.conftest import run_stage
from tests.scraping.wiki_server import WikiServer, png_bytes

WIDE = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 10"><rect width="20" height="10"/></svg>'
TALL = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 16"><rect width="4" height="16" fill="#f00"/></svg>'


def rows_of(folder):
    with open(folder / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_folder_keeps_aspect_ratio_centred_and_reports_bad_svgs(tmp_path, capsys):
    svgs = tmp_path / "raw-svg"
    svgs.mkdir()
    (svgs / "wide.svg").write_text(WIDE)
    (svgs / "tall.svg").write_text(TALL)
    (svgs / "broken.svg").write_text("<svg><rect")
    out = tmp_path / "png"
    assert rasterize.main(["--path", str(svgs), "--out", str(out), "--size", "16", "--margin", "0",
                           "--workers", "2", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(f"not rendered: {svgs / 'broken.svg'}: cannot render")
    assert captured.out.strip() == f"Wrote 2 PNGs (16x16) to {out}; 1 SVGs could not be rendered (listed above)"

    wide = np.asarray(Image.open(out / "wide.png"))
    assert wide.shape == (16, 16, 3)
    dark_rows = np.flatnonzero(wide.max(axis=(1, 2)) < 128)
    assert (dark_rows.min(), dark_rows.max()) == (4, 11)  # 16x8 black band, 4 white rows above and below
    tall = np.asarray(Image.open(out / "tall.png"))
    red_columns = np.flatnonzero((tall[..., 0] > 200) & (tall[..., 1] < 60)).reshape(-1)
    assert set(red_columns % 16) == {6, 7, 8, 9}  # 4x16 red bar in the middle columns
    assert [row["path"] for row in rows_of(out)] == ["tall.png", "wide.png"]


def test_transparent_background(tmp_path):
    svgs = tmp_path / "svg"
    svgs.mkdir()
    (svgs / "wide.svg").write_text(WIDE)
    rasterize.main(["--path", str(svgs), "--out", str(tmp_path / "png"), "--size", "16", "--margin", "0",
                    "--background", "transparent", "--workers", "1", "--no-progress"])
    image = np.asarray(Image.open(tmp_path / "png" / "wide.png"))
    assert image.shape == (16, 16, 4)
    assert image[0, 0, 3] == 0 and image[8, 8, 3] == 255


def test_simple_icons_in_brand_colours(tmp_path):
    out = tmp_path / "si"
    rasterize.main(["--source", "simple-icons", "--brand-colours", "--limit", "3", "--size", "32", "--out", str(out),
                    "--workers", "2", "--no-progress"])
    icons = list(simple_icons())[:3]
    rows = rows_of(out)
    assert [row["path"] for row in rows] == sorted(f"{icon.slug}.png" for icon in icons)
    for icon in icons:
        pixels = np.asarray(Image.open(out / f"{icon.slug}.png")).reshape(-1, 3)
        inked = pixels[(pixels != 255).any(axis=1)]
        colours, counts = np.unique(inked, axis=0, return_counts=True)
        assert tuple(colours[counts.argmax()]) == parse_hex_colour(icon.colour)
    assert all(row["licence"].startswith("CC0-1.0") for row in rows)


def test_fontawesome_set(tmp_path):
    out = tmp_path / "fa"
    rasterize.main(["--source", "fontawesome", "--set", "solid", "--limit", "2", "--size", "24", "--out", str(out),
                    "--workers", "1", "--no-progress"])
    rows = rows_of(out)
    assert len(rows) == 2 and all(row["source_url"].startswith("fontawesomefree ") for row in rows)
    assert all(row["licence"].startswith("CC-BY-4.0") for row in rows)
    assert all(np.asarray(Image.open(out / row["path"])).min() == 0 for row in rows)  # black ink present


def test_svg_cannot_reach_out(tmp_path):
    """Safe mode: an <image> pointing at a server and an external entity are not fetched."""
    server = WikiServer()
    server.add_file("x.png", png_bytes(1), "image/png")
    with server:
        hostile = (f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY secret SYSTEM "{server.base}/entity">]>'
                   '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                   f'viewBox="0 0 10 10"><text>&secret;</text><image xlink:href="{server.original_url("x.png")}" '
                   'width="10" height="10"/><rect width="5" height="5"/></svg>')
        svgs = tmp_path / "svg"
        svgs.mkdir()
        (svgs / "hostile.svg").write_text(hostile)
        rasterize.main(["--path", str(svgs), "--out", str(tmp_path / "png"), "--size", "16", "--workers", "1",
                        "--no-progress"])
        assert server.log == []


def test_bad_flags_get_one_line(tmp_path):
    result = run_stage("-m", "scraping.rasterize", "--source", "fontawesome", "--path", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "scraping.rasterize: error: --path DIR goes with --source folder (the default) and only with it")
    with pytest.raises(UserError, match=f"--path {tmp_path} holds no .svg files"):
        rasterize.main(["--path", str(tmp_path)])
