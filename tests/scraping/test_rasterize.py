"""SVG -> PNG: aspect ratio and centring, backgrounds, the packaged icon sets, bad and hostile SVGs."""
from __future__ import annotations

import base64
import csv
import io
import os
import time

import numpy as np
import pytest
from PIL import Image

from infra import icons
from infra.errors import UserError
from infra.icons import SvgError, parse_hex_colour, render_svg, simple_icons
from scraping import rasterize
from tests.scraping.conftest import run_stage
from tests.preprocessing.image_fixtures import png_with_declared_size
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
    assert captured.out.strip() == (f"Wrote 2 PNGs (16x16) to {out}; 1 SVGs not rendered (cannot render: 1), "
                                    "listed above")

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


def embedding(png: bytes) -> str:
    """An SVG showing ``png`` as a data: URI, the way editors embed bitmaps."""
    return ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">'
            f'<image width="10" height="10" xlink:href="data:image/png;base64,{base64.b64encode(png).decode()}"/>'
            "</svg>")


def use_explosion(levels: int) -> str:
    """A couple of KB that draw 10**(levels + 1) rectangles: each group <use>s the one below ten times."""
    groups = '<g id="g0">' + "".join(f'<rect x="{i}" y="{i}" width="1" height="1"/>' for i in range(10)) + "</g>"
    for level in range(1, levels + 1):
        groups += f'<g id="g{level}">' + f'<use xlink:href="#g{level - 1}"/>' * 10 + "</g>"
    return ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 20 20">'
            f'<defs>{groups}</defs><use xlink:href="#g{levels}"/></svg>')


def hostile_svgs(folder):
    """Per kind of hostile SVG: (its path, a piece of the one line that refuses it)."""
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    bomb = folder / "embedded-bomb.svg"  # a 20000x20000 PNG in a few hundred bytes of SVG
    bomb.write_text(embedding(png_with_declared_size(20000, 20000)))
    found["embedded-bomb"] = (bomb, "embedded images too large: they declare 400000000 pixels; at most 16777216")
    huge = folder / "huge.svg"
    huge.write_text(WIDE.replace("<rect", "<!--" + "x" * (9 << 20) + "--><rect"))
    found["huge"] = (huge, f"SVG too large: {huge.stat().st_size} bytes; at most {icons.MAX_SVG_BYTES}")
    slow = folder / "slow.svg"
    slow.write_text(use_explosion(5))
    found["slow"] = (slow, "too slow to render: took more than 1 s")
    return found


def test_a_folder_run_skips_and_counts_svgs_over_the_limits(tmp_path, capsys):
    svgs = tmp_path / "svg"
    hostile = hostile_svgs(svgs)
    (svgs / "wide.svg").write_text(WIDE)
    out = tmp_path / "png"
    started = time.monotonic()
    assert rasterize.main(["--path", str(svgs), "--out", str(out), "--size", "16", "--workers", "2",
                           "--time-limit", "1", "--no-progress"]) == 0
    assert time.monotonic() - started < 30
    captured = capsys.readouterr()
    assert captured.out.strip() == (f"Wrote 1 PNGs (16x16) to {out}; 3 SVGs not rendered (SVG too large: 1, "
                                    "embedded images too large: 1, too slow to render: 1), listed above")
    lines = captured.err.strip().splitlines()
    assert len(lines) == 3
    for path, message in hostile.values():
        assert any(line.startswith(f"not rendered: {path}: {message}") for line in lines), (message, lines)
    assert [row["path"] for row in rows_of(out)] == ["wide.png"]


@pytest.mark.parametrize("kind", ["embedded-bomb", "huge", "slow"])
def test_one_svg_given_directly_over_the_limits_is_one_line(tmp_path, kind):
    path, message = hostile_svgs(tmp_path / "svg")[kind]
    out = tmp_path / "png"
    result = run_stage("-m", "scraping.rasterize", "--path", str(path), "--out", str(out), "--time-limit", "1",
                       "--no-progress")
    assert result.returncode == 2
    assert result.stderr.startswith(f"scraping.rasterize: error: --path {path}: {message}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_pipes_and_broken_links_among_the_svgs_are_unreadable_not_tracebacks(tmp_path, capsys):
    svgs = tmp_path / "svgs"
    svgs.mkdir()
    (svgs / "wide.svg").write_text(WIDE)
    os.mkfifo(svgs / "pipe.svg")  # never read: it would block the run
    (svgs / "moved.svg").symlink_to(tmp_path / "nowhere.svg")
    out = tmp_path / "png"
    assert rasterize.main(["--path", str(svgs), "--out", str(out), "--size", "16", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"Wrote 1 PNGs (16x16) to {out}; 2 SVGs not rendered (unreadable: 2), listed above"
    assert sorted(captured.err.strip().splitlines()) == [
        f"not rendered: {svgs / 'moved.svg'}: unreadable: No such file or directory",
        f"not rendered: {svgs / 'pipe.svg'}: unreadable: not a regular file"]


def test_one_good_svg_given_directly_is_rendered(tmp_path):
    (tmp_path / "wide.svg").write_text(WIDE)
    assert rasterize.main(["--path", str(tmp_path / "wide.svg"), "--out", str(tmp_path / "png"), "--size", "16",
                           "--no-progress"]) == 0
    assert [row["path"] for row in rows_of(tmp_path / "png")] == ["wide.png"]
    assert np.asarray(Image.open(tmp_path / "png" / "wide.png")).shape == (16, 16, 3)


def test_a_render_that_needs_more_memory_than_its_cap_is_stopped(monkeypatch):
    """A bitmap within the pixel limit, decoded by a worker allowed less memory than it needs."""
    buffer = io.BytesIO()
    Image.new("L", (4000, 4000), 0).save(buffer, "PNG")
    monkeypatch.setattr(icons, "RENDER_MEMORY_BYTES", 48 << 20)
    monkeypatch.setattr(icons, "_WORKERS", icons._WorkerPool())
    try:
        with pytest.raises(SvgError, match="^needs too much memory: more than 48 MiB$"):
            render_svg(embedding(buffer.getvalue()), 32)
        assert render_svg(WIDE, 8).size == (8, 8)  # the same worker serves the next file
    finally:
        icons._WORKERS.close()


@pytest.mark.parametrize("root, drawing, view_box", [
    ("", '<circle cx="40" cy="40" r="30" fill="#e11d48"/><rect x="20" y="60" width="60" height="20"/>', "10 10 70 70"),
    ('width="100%" height="100%"', '<rect x="-3020" y="-1000" width="40" height="20" fill="#2563eb"/>',
     "-3020 -1000 40 20"),
    ("", '<circle cx="1.5" cy="1.5" r="1" fill="#16a34a"/>', "0.5 0.5 2 2"),  # under a pixel of the wide search
])
def test_an_svg_that_gives_no_size_renders_its_whole_drawing_as_if_its_bounds_were_its_viewbox(root, drawing,
                                                                                                view_box):
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" {root}>{drawing}</svg>'
    framed = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view_box}">{drawing}</svg>'
    rendered, expected = (np.asarray(render_svg(text, 56), "float32") / 255 for text in (svg, framed))
    assert (expected < 0.9).any(axis=-1).mean() > 0.15  # the mark fills the canvas
    assert np.abs(rendered - expected).mean() < 0.01


def test_an_svg_that_gives_no_size_and_draws_nothing_near_its_origin_is_not_rendered_with_a_reason():
    with pytest.raises(SvgError, match="gives no size .* draws nothing within 10000 units"):
        render_svg('<svg xmlns="http://www.w3.org/2000/svg"><rect x="50000" width="9" height="9"/></svg>', 56)
