"""scraping.iconify and the colour_logos preset against an npm registry stand-in on 127.0.0.1: the integrity check,
the cache (used again, and alone when the registry is gone), one-line errors, safe tarball reading, the SVGs and
their provenance. Nothing here reaches the real network."""
from __future__ import annotations

import csv
import json
import re
import socket

import numpy as np
import pytest

from infra.errors import UserError
from infra.icons import render_svg, to_array
from preprocessing import colour_logos
from preprocessing.dataset import load_dataset
from scraping import iconify
from tests.scraping.conftest import run_stage
from tests.scraping.npm_registry import NpmRegistry, iconify_tarball, sri

RED, BLUE = "#ff0000", "#0000ff"
TWO_HALVES = f'<path fill="{RED}" d="M0 0h10v10H0z"/><path fill="{BLUE}" d="M10 0h10v10H10z"/>'
ICONS = {
    "prefix": "testset",
    "width": 20,
    "height": 10,
    "icons": {
        "duo": {"body": TWO_HALVES},
        "duo-flipped": {"body": TWO_HALVES, "hFlip": True},
        "mono": {"body": '<path fill="#00aa00" d="M0 0h8v8H0z"/>', "width": 8, "height": 8},
        "old-name": {"body": TWO_HALVES, "hidden": True},
    },
    "aliases": {"duo-alias": {"parent": "duo"}},
}
INFO = {"prefix": "testset", "name": "Test Set", "author": {"name": "Test Author", "url": "https://example.org/a"},
        "license": {"title": "MIT", "spdx": "MIT", "url": "https://example.org/licence"}}
TARBALL = iconify_tarball(ICONS, INFO)


@pytest.fixture
def registry():
    with NpmRegistry() as server:
        server.publish("testset", "1.0.0", TARBALL)
        yield server


def fetch(registry_url: str, out, cache, *sets: str, extra=()):
    return run_stage("-m", "scraping.iconify", *[arg for name in sets for arg in ("--set", name)], "--out", str(out),
                     "--registry", registry_url, "--cache", str(cache), "--retries", "0", "--no-progress", *extra)


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("scraping.iconify: error: ")
    return lines[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pixel(svg: str, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in to_array(render_svg(svg, 40))[y, x])


def test_writes_one_svg_per_icon_in_its_colours_with_provenance(registry, tmp_path):
    result = fetch(registry.url, tmp_path / "out", tmp_path / "cache", "testset")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"testset 1.0.0 (MIT): 3 SVGs in {tmp_path / 'out' / 'testset'}; "
                                     "skipped alias: 1, hidden: 1")
    folder = tmp_path / "out" / "testset"
    assert sorted(path.name for path in folder.glob("*.svg")) == ["duo-flipped.svg", "duo.svg", "mono.svg"]
    duo = (folder / "duo.svg").read_text()
    assert re.search(r'<svg [^>]*width="20" height="10" viewBox="0 0 20 10"', duo)
    assert 'viewBox="0 0 8 8"' in (folder / "mono.svg").read_text()
    # Rendered 40 px wide, the 2:1 icon sits in rows 10..29: red on the left, blue on the right; flipped, swapped.
    assert pixel(duo, 5, 20) == (255, 0, 0) and pixel(duo, 35, 20) == (0, 0, 255)
    assert pixel(duo, 5, 3) == (255, 255, 255)
    flipped = (folder / "duo-flipped.svg").read_text()
    assert pixel(flipped, 5, 20) == (0, 0, 255) and pixel(flipped, 35, 20) == (255, 0, 0)

    with open(tmp_path / "out" / "manifest.csv", newline="") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == ["testset/duo-flipped.svg", "testset/duo.svg", "testset/mono.svg"]
    duo_row = rows["testset/duo.svg"]
    assert (duo_row["licence"], duo_row["artist"], duo_row["title"]) == ("MIT", "Test Author", "Test Set: duo")
    assert duo_row["source_url"] == f"{registry.url}/@iconify-json/testset/-/testset-1.0.0.tgz#duo"
    assert int(duo_row["bytes"]) == len(duo.encode())
    record = json.loads((folder / "iconify.json").read_text())
    assert (record["package"], record["version"], record["integrity"]) == ("@iconify-json/testset", "1.0.0",
                                                                           sri(TARBALL))
    assert record["licence"] == INFO["license"] and record["author"] == INFO["author"]
    assert record["skipped"] == {"alias": 1, "hidden": 1}


def test_the_cache_is_used_again_and_alone_when_the_registry_is_gone(registry, tmp_path):
    cache = tmp_path / "cache"
    assert fetch(registry.url, tmp_path / "one", cache, "testset").returncode == 0
    assert fetch(registry.url, tmp_path / "two", cache, "testset").returncode == 0
    assert registry.tarball_requests() == 1  # the second run checked the metadata, then used the cached tarball
    registry.stop()
    offline = fetch(registry.url, tmp_path / "three", cache, "testset")
    assert offline.returncode == 0, offline.stderr
    assert f"cannot be reached; using the cached @iconify-json/testset@1.0.0" in offline.stderr
    assert (tmp_path / "three" / "testset" / "duo.svg").read_text() == (tmp_path / "one" / "testset" / "duo.svg"
                                                                       ).read_text()


def test_a_tarball_whose_hash_differs_from_the_registrys_is_refused(tmp_path):
    with NpmRegistry() as registry:
        registry.publish("testset", "1.0.0", TARBALL, integrity=sri(b"something else"))
        result = fetch(registry.url, tmp_path / "out", tmp_path / "cache", "testset")
    line = one_error_line(result)
    assert "@iconify-json/testset@1.0.0: the tarball's sha512 is" in line and "refused" in line
    assert not (tmp_path / "out" / "testset").exists()
    assert not list((tmp_path / "cache").glob("*.tgz"))  # nothing unchecked is cached


def test_without_an_integrity_the_shasum_is_checked(tmp_path):
    cache = iconify.TarballCache(tmp_path / "cache")
    session = iconify.http_session(None, 0, 1)
    with NpmRegistry() as registry:
        registry.publish("testset", "1.0.0", TARBALL, integrity="")
        registry.publish("other", "2.0.0", TARBALL, integrity="", shasum="0" * 40)
        icon_set = iconify.load_icon_set(iconify.SetSpec("testset"), registry.url, cache, session, progress=False)
        with pytest.raises(UserError, match="the tarball's sha1 is [0-9a-f]{40}, the registry says 0{40}; refused"):
            iconify.load_icon_set(iconify.SetSpec("other"), registry.url, cache, session, progress=False)
    assert [icon.name for icon in icon_set.icons] == ["duo", "duo-flipped", "mono"]


def test_a_set_the_registry_does_not_have_is_one_line(registry, tmp_path):
    line = one_error_line(fetch(registry.url, tmp_path / "out", tmp_path / "cache", "testset", "nosuchset"))
    assert line.endswith(f"--set nosuchset: the registry {registry.url} has no package @iconify-json/nosuchset; see "
                         "https://icon-sets.iconify.design for the names of Iconify sets")
    assert not (tmp_path / "out" / "testset").exists()  # every set is checked before anything is written


def test_a_version_the_registry_does_not_have_is_one_line(registry, tmp_path):
    line = one_error_line(fetch(registry.url, tmp_path / "out", tmp_path / "cache", "testset@9.9.9"))
    assert line.endswith("--set testset@9.9.9: @iconify-json/testset has no version 9.9.9; the latest is 1.0.0")


def test_a_registry_that_cannot_be_reached_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    line = one_error_line(fetch(url, tmp_path / "out", tmp_path / "cache", "testset"))
    assert f"--set testset: cannot reach {url}/@iconify-json%2Ftestset (ConnectionError)" in line


@pytest.mark.parametrize("extra, links, member", [
    ({"package/../../evil.txt": b"x"}, None, "package/../../evil.txt"),
    ({}, {"package/link": "../../../etc/passwd"}, "package/link"),
])
def test_a_tarball_with_an_unsafe_member_is_refused(tmp_path, extra, links, member):
    from tests.scraping.npm_registry import tarball

    members = {"package/icons.json": json.dumps(ICONS).encode(), **extra}
    with NpmRegistry() as registry:
        registry.publish("testset", "1.0.0", tarball(members, links))
        line = one_error_line(fetch(registry.url, tmp_path / "out", tmp_path / "cache", "testset"))
    assert f"unsafe tarball member {member!r}" in line and line.endswith("; refused")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "testset").exists()


def test_an_icon_name_that_is_a_path_is_refused():
    data = {"icons": {"../../escape": {"body": "<path/>"}}}
    with pytest.raises(UserError, match="names an icon '../../escape', not an Iconify name"):
        iconify.icons_from_json(data, "x")


def test_rotation_and_set_defaults_follow_iconify():
    svg = iconify.icon_svg("<g/>", {"left": 2, "top": 0, "width": 20, "height": 10}, rotate=1)
    assert 'width="10" height="20" viewBox="0 2 10 20"' in svg and 'transform="rotate(90 5 5)"' in svg
    icons, _ = iconify.icons_from_json({"icons": {"a": {"body": "<g/>"}}}, "x")
    assert 'width="16" height="16" viewBox="0 0 16 16"' in icons[0].svg


def test_the_held_out_set_is_refused_by_the_fetcher_and_the_preset(registry, tmp_path):
    line = one_error_line(fetch(registry.url, tmp_path / "out", tmp_path / "cache", "logos"))
    assert "--set logos: held out for evaluation" in line
    with pytest.raises(UserError, match="--set logos: held out for evaluation"):
        colour_logos.main(["--set", "logos", "--registry", registry.url, "--out", str(tmp_path / "x.npz")])
    with pytest.raises(UserError, match="--set logos@1.2.3: held out for evaluation"):
        colour_logos.main(["--set", "logos@1.2.3", "--registry", registry.url, "--out", str(tmp_path / "x.npz")])
    assert registry.log == []  # refused before asking the registry anything


def test_the_preset_packs_multi_colour_marks_with_credits(registry, tmp_path, capsys):
    out = tmp_path / "colour.npz"
    colour_logos.main(["--set", "testset", "--registry", registry.url, "--cache", str(tmp_path / "cache"),
                       "--out", str(out), "--size", "16", "--margin", "0", "--workers", "1", "--no-progress"])
    dataset = load_dataset(out)
    assert dataset.meta["sources"] == ["testset:duo", "testset:duo-flipped"]  # the one-colour mark is left out
    assert dataset.x.shape == (2, 16, 16, 3)
    assert tuple(dataset.x[0, 8, 1]) == (255, 0, 0) and tuple(dataset.x[0, 8, 14]) == (0, 0, 255)
    assert dataset.meta["licences"] == {"MIT": 2}
    assert dataset.meta["credits"][0]["artist"] == "Test Author"
    assert dataset.meta["sets"][0]["counts"] == {"icons": 3, "single_colour": 1, "failed": 0, "kept": 2}
    assert out.with_name("colour.contact.png").is_file()
    assert "testset: 3 icons, 1 single-colour left out, 0 not rendered, 2 kept" in capsys.readouterr().out


def test_the_multi_colour_rule():
    mark = np.zeros((20, 20, 4), np.uint8)
    mark[:, :, 3] = 255
    mark[:, :, 0] = 200
    assert not colour_logos.is_multi_colour(mark)  # one flat colour
    mark[:, :1, 2] = 200
    assert not colour_logos.is_multi_colour(mark)  # a second colour on 5% of the mark: an edge, not a colour
    mark[:, :4, 2] = 200
    assert colour_logos.is_multi_colour(mark)  # on 20%
    mark[:, :, 3] = 0
    assert not colour_logos.is_multi_colour(mark)  # nothing opaque
