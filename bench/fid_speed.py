"""How fast the FID Inception embeds images on this machine (CPU, or GPU where the backend finds one).

    python bench/fid_speed.py --images 128 --batch-size 32 --size 64
    KERAS_BACKEND=jax python bench/fid_speed.py
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from evaluation.features import InceptionEmbedder  # noqa: E402
from infra import cli  # noqa: E402
from infra.device_check import device_name  # noqa: E402


DESCRIPTION = """\
How fast the FID Inception embeds images on this machine (CPU, or GPU where the backend finds one).

Prints the backend, the device and images/s after one warm-up batch (which pays for compilation).
"""
EPILOG = """\
examples:
  python bench/fid_speed.py --images 128 --batch-size 32 --size 64
  KERAS_BACKEND=jax python bench/fid_speed.py
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/fid_speed.py", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=128, help="images to embed in the timed part (default: 128)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default: 32)")
    parser.add_argument("--size", type=int, default=64, help="side of the random RGB input images (default: 64)")
    parser.add_argument("--inception-weights", default=None,
                        help="the FID network archive (default: $LOGOGAN_INCEPTION_WEIGHTS, else "
                        "$LOGOGAN_SHARED/fid, else the user cache)")
    args = parser.parse_args(argv)
    images = np.random.default_rng(0).integers(0, 256, (args.images, args.size, args.size, 3), dtype=np.uint8)
    started = time.perf_counter()
    embedder = InceptionEmbedder(args.inception_weights, batch_size=args.batch_size, progress=False)
    embedder.embed(images[:args.batch_size])
    warm_up = time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed(images)
    elapsed = time.perf_counter() - started
    backend = keras.backend.backend()
    print(f"backend {backend} on {device_name(backend)[0]}: {args.images} images of {args.size}x{args.size} "
          f"in batches of {args.batch_size}: {args.images / elapsed:.1f} images/s (build + warm-up {warm_up:.1f} s)")
    return 0


if __name__ == "__main__":
    cli.run(main)
