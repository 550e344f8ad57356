"""Benchmark stage 2: pack a folder of mixed real logos (PNG) into a 56 px dataset; prints images/s.

    python bench/preprocess_speed.py --count 2000 --keep /tmp/logos
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra import cli  # noqa: E402
from infra.icons import render_svg, simple_icons  # noqa: E402
from preprocessing import build  # noqa: E402
from preprocessing.clean import run_clean  # noqa: E402
from preprocessing.dedupe import dedupe, hamming_threshold  # noqa: E402
from preprocessing.pack import write_packed  # noqa: E402

FONT_AWESOME_STYLES = ("brands", "solid", "regular")


def font_awesome_svgs() -> list[tuple[str, str]]:
    import fontawesomefree

    root = Path(fontawesomefree.__file__).parent / "static" / "fontawesomefree" / "svgs"
    return [
        (f"fa-{style}-{path.stem}", path.read_text())
        for style in FONT_AWESOME_STYLES
        for path in sorted((root / style).glob("*.svg"))
    ]


def _render(job: tuple[Path, str, str | None, int, float, bool]) -> None:
    path, svg, colour, size, margin, transparent = job
    image = render_svg(svg, size, fill=colour, margin=margin, background=None if transparent else (255, 255, 255))
    image.save(path)


def render_folder(folder: Path, count: int, workers: int) -> None:
    icons = [(f"si-{icon.slug}", icon.svg, icon.colour) for icon in simple_icons()]
    icons += [(name, svg, "#000000") for name, svg in font_awesome_svgs()]
    step = max(1, len(icons) // count)
    chosen = icons[::step][:count]
    jobs = [
        (folder / f"{name}.png", svg, colour, 96 + (index * 37) % 225, (index % 7) * 0.04, index % 3 == 0)
        for index, (name, svg, colour) in enumerate(chosen)
    ]
    with Pool(workers) as pool:
        pool.map(_render, jobs, chunksize=16)


DESCRIPTION = """\
Benchmark stage 2: pack a folder of mixed real logos (PNG) into a 56 px dataset; prints images/s.

Simple Icons (brand colours) and Font Awesome (black) SVGs are rendered with the shared icon renderer at
assorted sizes and margins, a third of them on transparency, as the input folder; then preprocessing.build
runs on it, timed, with all cores. Target: at least 500 images/s and 2,000 images in under 10 s on 2 cores.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/preprocess_speed.py", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="input images to render (default: 2000)")
    parser.add_argument("--size", type=int, default=56, help="dataset image side (default: 56)")
    parser.add_argument("--keep", type=Path, default=None, help="render into and pack beside this folder instead of a temporary one")
    args = parser.parse_args(argv)
    workers = os.cpu_count()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        images = folder / "images"
        images.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        render_folder(images, args.count, workers)
        files = len(list(images.glob("*.png")))
        print(f"rendered {files} PNGs in {time.perf_counter() - started:.1f} s")
        out = folder / f"logos_{args.size}.npz"
        flags = build.parse_args(["--input", str(images), "--size", str(args.size), "--trim", "--out", str(out), "--no-progress"])
        # The steps build.main runs, timed one by one: cleaning runs on every core, the rest on one.
        phases = {}
        with timed(phases, "clean (all cores)"):
            dataset = run_clean(flags)
        with timed(phases, "dedupe"):
            dataset, _ = dedupe(dataset, hamming_threshold(flags))
        with timed(phases, "write .npz + contact sheet"):
            write_packed(dataset, flags)
        wall = sum(elapsed for elapsed, _ in phases.values())
        for name, (elapsed, cpu) in phases.items():
            print(f"  {name:<28} {elapsed:6.2f} s wall, {cpu:6.2f} s CPU")
        print(f"packed {files} images at {args.size} px in {wall:.2f} s on {workers} cores: {files / wall:.0f} images/s")
        clean_cpu = phases["clean (all cores)"][1]
        idle_estimate = clean_cpu / workers + sum(cpu for name, (_, cpu) in phases.items() if "all cores" not in name)
        print(
            f"on {workers} otherwise idle cores (from CPU time): about {idle_estimate:.2f} s, {files / idle_estimate:.0f} "
            f"images/s; load average during the run: {os.getloadavg()[0]:.1f}"
        )
    return 0


@contextlib.contextmanager
def timed(phases: dict, name: str):
    """Record (wall seconds, CPU seconds of this process and its finished workers) for a step."""
    before, started = os.times(), time.perf_counter()
    yield
    after = os.times()
    phases[name] = (time.perf_counter() - started, sum(after[:4]) - sum(before[:4]))


if __name__ == "__main__":
    cli.run(main)
