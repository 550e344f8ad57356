"""What sets a quality run's better seeds apart? Simple statistics of each run's samples beside its KID.

    python bench/sample_stats.py bench/out/colour_v30 bench/out/colour_v31 --data data/colour_logos_56.npz

For each bench/quality.py output folder given (its results.json and runs/), draws --count samples of every run's
generator with one seed and measures them as the training data is measured: ink (the share of pixels off white),
multi-colour (the share of marks of two or more colours, models.data.multi_colour_share), on a tile (the share
whose circle at 0.42 of the side about the centre lies, three fifths of it, off white: a tile or disc under the
mark), saturation (mean spread between a pixel's channels), and spread (each sample's distance to its nearest
other sample at 14 x 14 px: high where samples are odd or scattered, low where they collapse). Prints one row per
run with its KID x 1e3, the data's row, and each statistic's correlation with KID over the runs: a statistic that
follows KID is a lever worth a preset's option; one that does not, is not.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from infra import cli  # noqa: E402  (after the path insert, so the script runs from anywhere)
from infra.errors import UserError  # noqa: E402

STATISTICS = ("ink", "multi-colour", "on a tile", "saturation", "spread")
OFF_WHITE = 0.25  # a pixel is ink where one channel lies this far below white ([0, 1])
TILE_RADIUS, TILE_COVER = 0.42, 0.6


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python bench/sample_stats.py", description=__doc__.split("\n\n")[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_out", nargs="+", help="bench/quality.py output folders (results.json and runs/)")
    parser.add_argument("--data", required=True, help="the dataset (.npz) the runs trained on: the data's row")
    parser.add_argument("--count", type=int, default=600, help="samples per run, and images of the data (default: 600)")
    args = parser.parse_args(argv)
    if args.count < 2:
        parser.error(f"--count: {args.count}; expected a whole number of 2 or more")
    for folder in args.bench_out:
        if not (Path(folder) / "results.json").is_file():
            raise UserError(f"{folder}: no results.json here; give folders that bench/quality.py wrote")
    return args


def statistics(images) -> list[float]:
    """STATISTICS of uint8 images (N, H, W, 3), in that order."""
    import numpy as np

    from models.data import multi_colour_share

    x = images.astype("float32") / 255.0
    size = x.shape[1]
    ink = float((np.abs(x - 1.0).max(axis=-1) > OFF_WHITE).mean())
    angles = np.linspace(0.0, 2.0 * np.pi, 96, endpoint=False)
    rows = np.round((size - 1) / 2 + TILE_RADIUS * size * np.sin(angles)).astype(int)
    columns = np.round((size - 1) / 2 + TILE_RADIUS * size * np.cos(angles)).astype(int)
    tiles = float(((np.abs(x[:, rows, columns] - 1.0).max(axis=-1) > OFF_WHITE).mean(axis=1) >= TILE_COVER).mean())
    saturation = float((x.max(axis=-1) - x.min(axis=-1)).mean())
    block = size // 14
    small = x[:, :14 * block, :14 * block].reshape(len(x), 14, block, 14, block, 3).mean(axis=(2, 4))
    flat = small.reshape(len(x), -1)
    distances = (flat ** 2).sum(1)[:, None] + (flat ** 2).sum(1)[None] - 2 * flat @ flat.T
    np.fill_diagonal(distances, np.inf)
    spread = float(np.sqrt(np.maximum(distances.min(axis=1), 0)).mean())
    return [ink, multi_colour_share(images), tiles, saturation, spread]


def main(argv=None) -> None:
    args = parse_args(argv)
    import numpy as np

    from models.generate import load_generator
    from preprocessing.dataset import load_dataset

    data = load_dataset(args.data).x
    data = data[np.random.default_rng(0).choice(len(data), min(args.count, len(data)), replace=False)]
    header = f"{'run':<44} {'KID':>6} " + " ".join(f"{name:>12}" for name in STATISTICS)
    print(header)
    print(f"{'the data, ' + Path(args.data).name:<44} {'':>6} " + " ".join(f"{v:12.3f}" for v in statistics(data)))
    kids, rows = [], []
    for folder in map(Path, args.bench_out):
        results = json.loads((folder / "results.json").read_text())
        for name, result in results["results"].items():
            samples = load_generator(folder / "runs" / name).sample(args.count, seed=1)
            kids.append(result["kid"] * 1e3)
            rows.append(statistics(samples))
            config = Path(results["configs"][name]).stem
            print(f"{folder.name + ' ' + config:<44} {kids[-1]:6.1f} " + " ".join(f"{v:12.3f}" for v in rows[-1]),
                  flush=True)
    if len(kids) > 2:
        table = np.array(rows)
        correlations = [np.corrcoef(kids, table[:, index])[0, 1] for index in range(len(STATISTICS))]
        print(f"{'correlation with KID over ' + str(len(kids)) + ' runs':<51} "
              + " ".join(f"{value:12.2f}" for value in correlations))


if __name__ == "__main__":
    cli.run(main)
