"""How well can the vector generator's parts draw real logos at all? Fit each logo's scene directly, no generator.

    python bench/vector_fit.py --data data/colour_logos_56.npz --config configs/logos_vector.json --count 200

As LIVE and DiffVG do for one image, each of --count logos (drawn with a fixed seed) gets its own scene - the
palette and the config's parts in painter's order - optimised by Adam against the logo's pixels through the
same renderer the GAN trains with. Reports the mean IoU of the mark (pixels that differ from the image's
background, taken from its border) and the mean absolute pixel error, over the logos; and writes a picture of
targets over fits. The gap between these and the GAN's samples is the GAN's; what is left here is the renderer's.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from infra import cli  # noqa: E402  (after the path insert, so the script runs from anywhere)
from infra.errors import UserError  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MARK_THRESHOLD = 0.1  # a pixel belongs to the mark where it differs from the background by this much ([0, 1])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python bench/vector_fit.py", description=__doc__.split("\n\n")[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset (.npz) of logos")
    parser.add_argument("--config", default=str(PROJECT_ROOT / "configs" / "logos_vector.json"),
                        help="a config with a vector generator: its parts are fitted (default: logos_vector)")
    parser.add_argument("--count", type=int, default=200, help="logos fitted (default: 200)")
    parser.add_argument("--steps", type=int, default=400, help="Adam steps per fit (default: 400)")
    parser.add_argument("--restarts", type=int, default=1,
                        help="random starts per logo; the best fit counts (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="which logos and starting scenes (default: 0)")
    parser.add_argument("--kid", action="store_true",
                        help="also score the fits with the canonical FID network: KID of the fitted logos and of "
                        "the same logos themselves against the rest of the dataset, the renderer's ceiling beside the "
                        "floor of real images (needs the FID network, see evaluation/)")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "out" / "vector_fit.png"),
                        help="picture of targets (odd rows) over their fits (even rows)")
    args = parser.parse_args(argv)
    for name in ("count", "steps", "restarts"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: {getattr(args, name)}; expected a positive whole number")
    return args


def mark_of(images, background):
    """(N, H, W) True where an image in [0, 1] differs from its background colour."""
    import numpy as np

    return np.abs(images - background[:, None, None, :]).max(axis=-1) > MARK_THRESHOLD


def border_colour(images):
    """(N, C): each image's median border colour, its background."""
    import numpy as np

    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    return np.median(border, axis=1)


def fit(renderer, targets, steps: int, seed: int, label: str = "Fitting"):
    """The rendered fits (N, H, W, C) of :func:`fit_scenes` to ``targets`` (N, H, W, C) in the output range."""
    return renderer(fit_scenes(renderer, targets, steps, seed, label)).numpy()


def fit_scenes(renderer, targets, steps: int, seed: int, label: str = "Fitting", background: str | None = None):
    """Scenes (N, size) fitted to ``targets`` (N, H, W, C) in the output range, as the generator writes them
    (colours through tanh); with ``background`` ('#rrggbb', a generator's fixed palette_background) palette entry
    0 is held at that colour, as the generator holds it."""
    import numpy as np
    import tensorflow as tf
    from tqdm import tqdm

    from models.networks import vector

    layout = renderer.layout
    palette_width = layout.palette * layout.channels
    rng = np.random.default_rng(seed)
    bias = np.array(vector.starting_layout(layout), dtype="float32")
    geometry = tf.Variable(bias + rng.normal(0, 0.5, (len(targets), len(bias))).astype("float32"))
    colours = tf.Variable(rng.normal(0, 0.5, (len(targets), palette_width)).astype("float32"))
    optimizer = tf.keras.optimizers.Adam(0.05)
    targets = tf.constant(targets)
    if background:
        rgb = [int(background[start:start + 2], 16) / 255.0 for start in (1, 3, 5)]
        unit = rgb if layout.channels == 3 else [0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]]
        held = np.arctanh(np.clip(2.0 * np.array(unit, "float32") - 1.0, -0.999, 0.999))
        held = tf.constant(np.tile(held, (len(targets), 1)))

    def scenes():
        palette = colours if not background else tf.concat([held, colours[:, layout.channels:]], axis=1)
        return tf.concat([tf.tanh(palette), geometry], axis=1)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(renderer(scenes()) - targets))
        optimizer.apply_gradients(zip(tape.gradient(loss, [geometry, colours]), [geometry, colours]))
        return loss

    for _ in tqdm(range(steps), desc=label, unit="step"):  # all logos at once: a step is one batch of them
        step()
    return scenes().numpy()


def print_kid(images, chosen, fitted) -> None:
    """KID x1e3 against the logos not fitted, of the fits and of their targets: what a GAN whose samples were
    as good as the direct fits would score, beside what real logos score."""
    import numpy as np

    from evaluation.evaluator import Evaluator

    rest = np.delete(images, chosen, axis=0)
    evaluator = Evaluator(rest, ["kid"], progress=False)
    for label, candidates in (("the fitted logos", fitted), ("the same logos, real", images[chosen])):
        result = evaluator.evaluate(candidates)
        print(f"  KID x1e3 of {label:<22} {1e3 * result['kid']:.1f} +- {1e3 * result['kid_std']:.1f}  "
              f"(against the other {len(rest)} logos)")


def main(argv=None) -> None:
    args = parse_args(argv)
    import keras
    import numpy as np

    from models.config import load_config, resolve
    from models.images import image_grid, save_png
    from models.networks.generator import build_generator
    from models.train import settle_palette
    from preprocessing.dataset import load_dataset

    if keras.backend.backend() != "tensorflow":
        raise UserError(f"KERAS_BACKEND {keras.backend.backend()!r}: the fit runs on tensorflow")
    config = resolve(load_config(args.config), args.config)
    if config["generator"].get("architecture") != "vector":
        raise UserError(f"--config {args.config}: its generator is not a vector generator")
    dataset = load_dataset(args.data)
    settle_palette(config, dataset)  # palette 'auto': the count a run on this data would paint with
    images = dataset.x
    if args.count > len(images):
        raise UserError(f"--count {args.count}: {args.data} holds only {len(images)} images")
    chosen = np.random.default_rng(args.seed).choice(len(images), args.count, replace=False)
    targets = images[chosen].astype("float32") / 255.0
    generator = build_generator(config["generator"], targets.shape[1:], config["latent_dim"], None)
    renderer = generator.get_layer("vector_renderer")

    start = time.perf_counter()
    best, best_error = None, None
    for restart in range(args.restarts):
        fitted = (fit(renderer, targets * 2 - 1, args.steps, args.seed + restart,
                      f"Fitting {args.count} logos (start {restart + 1} of {args.restarts})") + 1) / 2
        error = np.abs(fitted - targets).mean(axis=(1, 2, 3))
        if best is None:
            best, best_error = fitted, error
        else:
            better = error < best_error
            best[better], best_error[better] = fitted[better], error[better]
    seconds = time.perf_counter() - start

    background = border_colour(targets)
    target_mark, fitted_mark = mark_of(targets, background), mark_of(best, background)
    union = (target_mark | fitted_mark).sum(axis=(1, 2))
    iou = np.where(union > 0, (target_mark & fitted_mark).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0)
    print(f"{args.count} logos of {args.data}, {len(renderer.layout.parts)} parts "
          f"({', '.join(renderer.layout.parts)}), palette {renderer.layout.palette}, {args.steps} Adam steps x "
          f"{args.restarts} start(s), {seconds:.0f} s:")
    print(f"  mark IoU            mean {iou.mean():.3f}  median {np.median(iou):.3f}")
    print(f"  pixel error (0-1)   mean {best_error.mean():.4f}  median {np.median(best_error):.4f}")
    if args.kid:
        print_kid(images, chosen, np.round(best * 255).astype("uint8"))
    shown = min(args.count, 16)
    rows = []
    for first in range(0, shown, 8):
        rows += [images[chosen[first:first + 8]], np.round(best[first:first + 8] * 255).astype("uint8")]
    save_png(args.out, image_grid(np.concatenate(rows), columns=8))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    cli.run(main)
