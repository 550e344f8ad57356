"""preprocessing.build on any folder: SVG and raster files mixed, several --input folders, skips by reason and
file type, class subfolders across folders."""
from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest
from PIL import Image

from infra.errors import UserError
from preprocessing import build
from preprocessing.dataset import load_dataset
from tests.preprocessing.image_fixtures import logo

RED_CIRCLE = ('<?xml version="1.0" encoding="UTF-8"?>\n<!-- a brand mark -->\n'
              '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="12" cy="12" r="10" '
              'fill="#dc141e"/></svg>')
GREEN_BAR = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 20"><rect x="2" y="6" width="16" height="8" '
             'fill="#14a03c"/></svg>')


def run_build(capsys, *flags: str) -> tuple[list[str], object]:
    out = flags[flags.index("--out") + 1]
    assert build.main([*flags, "--workers", "1", "--no-progress"]) == 0
    return capsys.readouterr().out.splitlines(), load_dataset(out)


def write_mixed_folders(tmp_path):
    svgs, pngs = tmp_path / "brand-svgs", tmp_path / "logo-pngs"
    svgs.mkdir()
    pngs.mkdir()
    (svgs / "circle.svg").write_text(RED_CIRCLE)
    (svgs / "bar.SVG").write_text(GREEN_BAR)
    (svgs / "broken.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><rect')
    (svgs / "notes.doc").write_bytes(b"\xd0\xcf\x11\xe0 not an image")
    logo(64, colour=(30, 60, 200), background=(250, 200, 0, 255)).save(pngs / "blue_on_yellow.png")
    logo(48, colour=(0, 0, 0)).convert("RGB").save(pngs / "black.jpg", quality=95)
    (pngs / "truncated.png").write_bytes((pngs / "blue_on_yellow.png").read_bytes()[:60])
    (pngs / "page.png").write_text("<html>404 not found</html>")
    return svgs, pngs


def test_svg_and_raster_files_from_two_folders_make_one_dataset(tmp_path, capsys):
    svgs, pngs = write_mixed_folders(tmp_path)
    out = tmp_path / "mine.npz"
    lines, dataset = run_build(capsys, "--input", str(svgs), "--input", str(pngs), "--size", "32", "--no-dedupe",
                               "--out", str(out))
    assert lines[0] == (
        f"Cleaned 4 of 8 files ({svgs}: 2 of 4, {pngs}: 2 of 4); "
        "skipped 4: 1 cannot render (.svg), 1 corrupt (.png), 2 not an image (1 .doc, 1 .png)"
    )
    assert lines[1].startswith(f"  cannot render: {svgs}/broken.svg (ParseError: ")  # which file, and why
    assert lines[2].startswith(f"  corrupt: {pngs}/truncated.png (") and lines[2].endswith(")")
    assert lines[3] == f"  not an image: {svgs}/notes.doc, {pngs}/page.png"
    assert dataset.meta["sources"] == [f"{svgs}/bar.SVG", f"{svgs}/circle.svg", f"{pngs}/black.jpg",
                                       f"{pngs}/blue_on_yellow.png"]
    assert dataset.meta["inputs"] == [{"folder": str(svgs), "files": 4, "kept": 2},
                                      {"folder": str(pngs), "files": 4, "kept": 2}]
    assert dataset.meta["skipped"] == {"cannot render": [f"{svgs}/broken.svg"], "corrupt": [f"{pngs}/truncated.png"],
                                       "not an image": [f"{svgs}/notes.doc", f"{pngs}/page.png"]}
    assert dataset.x.shape == (4, 32, 32, 3) and dataset.y is None
    bar, circle = dataset.x[0].astype(int), dataset.x[1].astype(int)
    # The SVGs are drawn in their own colours, centred, on white (their transparency flattened like a PNG's).
    assert np.abs(circle[16, 16] - (220, 20, 30)).max() <= 3 and circle[1, 1].tolist() == [255, 255, 255]
    assert np.abs(bar[16, 16] - (20, 160, 60)).max() <= 3 and bar[3, 16].tolist() == [255, 255, 255]
    assert dataset.x[3, 1, 1].tolist() == [250, 200, 0]  # the PNG keeps its coloured tile


def test_an_svg_folder_alone_is_a_dataset_and_files_are_known_by_content(tmp_path, capsys):
    folder = tmp_path / "svgs"
    folder.mkdir()
    (folder / "circle.svg").write_text(RED_CIRCLE)
    (folder / "no-suffix").write_text(GREEN_BAR)  # an SVG without its suffix still renders
    logo(40).save(folder / "really-a-png.svg", format="PNG")  # and a PNG named .svg opens as a PNG
    # A wordmark drawn across a square view box is framed by it, not refused as a banner (--max-aspect 4).
    (folder / "wordmark.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
                                         '<rect x="0" y="10" width="24" height="4"/></svg>')
    (folder / "empty.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"></svg>')
    lines, dataset = run_build(capsys, "--input", str(folder), "--size", "16", "--no-dedupe",
                               "--out", str(tmp_path / "svgs.npz"))
    assert lines[0] == "Cleaned 4 of 5 files; skipped 1: 1 blank (.svg)"
    assert dataset.meta["sources"] == ["circle.svg", "no-suffix", "really-a-png.svg", "wordmark.svg"]
    assert dataset.x[3, 8, :, 0].max() < 10 and dataset.x[3, 2, 8, 0] == 255  # a black bar across the middle


def test_pipes_devices_and_broken_links_are_counted_as_unreadable_and_never_read(tmp_path, capsys):
    """A pipe would block its reader forever and /dev/zero never ends; a broken link is a file the user meant."""
    folder = tmp_path / "logos"
    folder.mkdir()
    (folder / "circle.svg").write_text(RED_CIRCLE)
    os.mkfifo(folder / "pipe.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "moved.svg").symlink_to(tmp_path / "nowhere.svg")
    (folder / "again").symlink_to(folder)  # a link back up the tree is not walked into
    lines, dataset = run_build(capsys, "--input", str(folder), "--size", "16", "--out", str(tmp_path / "o.npz"))
    assert lines[0] == "Cleaned 1 of 4 files; skipped 3: 3 unreadable (2 .png, 1 .svg)"
    assert lines[1] == "  unreadable: moved.svg (No such file or directory), pipe.png (not a regular file) and 1 more"
    assert dataset.meta["skipped"] == {"unreadable": ["moved.svg", "pipe.png", "zero.png"]} and len(dataset.x) == 1


def test_an_svg_that_links_an_image_is_skipped_and_the_image_never_read(tmp_path, capsys):
    """The renderer fetches nothing (safe mode), so a linked picture would leave a blank or a fragment behind;
    an embedded one (a data: URI) is drawn."""
    folder = tmp_path / "svgs"
    folder.mkdir()
    Image.new("RGB", (20, 20), (255, 0, 0)).save(tmp_path / "secret.png")
    (folder / "peek.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 20 20">'
        '<rect x="0" y="0" width="4" height="4" fill="#000"/><rect x="16" y="16" width="4" height="4" fill="#000"/>'
        f'<image x="0" y="0" width="20" height="20" xlink:href="file://{tmp_path / "secret.png"}"/></svg>')
    (folder / "web.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><image '
                                    'HREF = " https://example.com/a.png" width="9" height="9"/></svg>')
    green = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 160, 0)).save(green, "PNG")
    (folder / "embedded.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 20 20">'
        '<image x="5" y="5" width="10" height="10" xlink:href="data:image/png;base64,'
        f'{base64.b64encode(green.getvalue()).decode()}"/></svg>')
    lines, dataset = run_build(capsys, "--input", str(folder), "--size", "16", "--out", str(tmp_path / "o.npz"))
    assert lines[0] == "Cleaned 1 of 3 files; skipped 2: 2 links an image (.svg)"
    assert lines[1].startswith("  links an image: peek.svg (its <image> links 'file:///")
    assert "web.svg (its <image> links 'https://example.com/a.png', never fetched: embed it as a data: URI" in lines[1]
    assert dataset.meta["sources"] == ["embedded.svg"]
    red = (dataset.x[..., 0] > 200) & (dataset.x[..., 1] < 60)
    assert tuple(dataset.x[0, 8, 8]) == (0, 160, 0) and not red.any()


def test_class_subfolders_across_folders_share_one_set_of_labels(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    for root, classes in ((first, ("bags", "shoes")), (second, ("hats", "shoes"))):
        for name in classes:
            (root / name).mkdir(parents=True)
            (root / name / "a.svg").write_text(RED_CIRCLE if name == "shoes" else GREEN_BAR)
            logo(40, colour=(0, 0, 200)).save(root / name / "b.png")
    _, dataset = run_build(capsys, "--input", str(first), "--input", str(second), "--no-dedupe", "--size", "16",
                           "--out", str(tmp_path / "labelled.npz"))
    assert dataset.class_names == ["bags", "hats", "shoes"]
    names = [name.split("/")[-2] for name in dataset.meta["sources"]]
    assert [dataset.class_names[label] for label in dataset.y] == names
    assert len(dataset.y) == 8


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("same", "--input {a}: is the same folder as --input {a}; give each folder once"),
        ("nested", "--input {a}/inner: is inside --input {a}; give each folder once"),
        ("mixed", "--input {b}: is not a folder of class subfolders, but --input {a} is; give folders of one "
                  "kind, or --labels none for an unlabelled dataset"),
    ],
)
def test_folders_that_cannot_go_together_are_one_line_errors(tmp_path, layout, message):
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("x", "y"):
        (a / name).mkdir(parents=True)
        logo(40).save(a / name / "1.png")
    (a / "inner").mkdir()
    b.mkdir()
    logo(40).save(b / "2.png")
    second = {"same": a, "nested": a / "inner", "mixed": b}[layout]
    with pytest.raises(UserError) as raised:
        build.main(["--input", str(a), "--input", str(second), "--out", str(tmp_path / "o.npz")])
    assert str(raised.value) == message.format(a=a, b=b)
    assert not (tmp_path / "o.npz").exists()


def test_nothing_usable_names_every_reason_and_type(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><path d=")
    (tmp_path / "in" / "b.webp").write_bytes(b"RIFF....WEBP broken")
    with pytest.raises(UserError) as raised:
        build.main(["--input", str(tmp_path / "in"), "--out", str(tmp_path / "o.npz"), "--workers", "1"])
    assert str(raised.value) == (f"--input {tmp_path / 'in'}: no usable images "
                                 "(skipped 2: 1 cannot render (.svg), 1 not an image (.webp))")
