"""Grid splitter: fixed grids with the walkthrough's names, and grids found from gutters."""
from __future__ import annotations

import numpy as np
from PIL import Image

from scraping import split_grid
from tests.scraping.conftest import run_stage


def sheet(cols, rows, cell=(20, 12), gutter=6, colours=None):
    """A white sheet of solid coloured logos, ``gutter`` px apart and from the edges."""
    width = cols * cell[0] + (cols + 1) * gutter
    height = rows * cell[1] + (rows + 1) * gutter
    pixels = np.full((height, width, 3), 255, np.uint8)
    for col in range(cols):
        for row in range(rows):
            x = gutter + col * (cell[0] + gutter)
            y = gutter + row * (cell[1] + gutter)
            pixels[y : y + cell[1], x : x + cell[0]] = (40 * col, 100 + 50 * row, 30)
    return Image.fromarray(pixels)


def test_fixed_grid_names_and_sizes(tmp_path, capsys):
    path = tmp_path / "sheet.png"
    Image.new("RGB", (31, 20), "white").save(path)
    assert split_grid.main(["--image", str(path), "--col", "3", "--row", "2", "--out", str(tmp_path / "tiles")]) == 0
    tiles = sorted(p.name for p in (tmp_path / "tiles").iterdir())
    assert tiles == [f"sheet_{col}_{row}.png" for col in range(3) for row in range(2)]
    widths = [Image.open(tmp_path / "tiles" / f"sheet_{col}_0.png").width for col in range(3)]
    assert widths == [10, 11, 10] and sum(widths) == 31
    assert "Wrote 6 tiles (3 columns x 2 rows)" in capsys.readouterr().out


def test_auto_finds_the_grid_from_gutters_in_a_jpeg(tmp_path):
    path = tmp_path / "logos.jpeg"
    sheet(4, 3).save(path, quality=80)
    split_grid.main(["--image", str(path), "--auto", "--out", str(tmp_path / "tiles")])
    names = sorted(p.name for p in (tmp_path / "tiles").iterdir())
    assert names == sorted(f"logos_{col}_{row}.jpeg" for col in range(4) for row in range(3))
    for col in range(4):
        for row in range(3):
            tile = np.asarray(Image.open(tmp_path / "tiles" / f"logos_{col}_{row}.jpeg"), dtype=int)
            centre = tile[tile.shape[0] // 2, tile.shape[1] // 2]
            assert np.abs(centre - (40 * col, 100 + 50 * row, 30)).max() < 12  # each tile holds its own logo


def test_gutter_cuts_go_through_the_middle_and_ignore_narrow_gaps():
    line = np.array([0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0], bool)
    assert split_grid.gutter_cuts(line, min_gap=3) == [0, 5, 11]
    assert split_grid.gutter_cuts(line, min_gap=1) == [0, 5, 8, 11]


def test_bad_input_gets_one_line(tmp_path):
    bad = tmp_path / "sheet.jpeg"
    bad.write_bytes(b"not an image")
    result = run_stage("-m", "scraping.split_grid", "--image", str(bad), "--cols", "2", "--rows", "2")
    assert result.returncode == 2
    assert result.stderr.startswith(f"scraping.split_grid: error: --image {bad} is not a readable image")
    assert len(result.stderr.strip().splitlines()) == 1
    blank = tmp_path / "blank.png"
    Image.new("RGB", (10, 10), "white").save(blank)
    assert "the sheet is blank" in run_stage("-m", "scraping.split_grid", "--image", str(blank), "--auto").stderr
