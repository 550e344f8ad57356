"""Images from a trained run: the ``load_generator`` API for other stages, and a CLI.

    python -m models.generate --run runs/NAME --n 64 [--class Sneaker] [--seed 1] --out grid.png|DIR
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from infra import cli, quiet
from infra.errors import UserError
from infra.output_paths import check_output_file, check_output_folder
from models import run_folder
from models.images import image_grid, save_png

CHECKPOINT_SLOTS = ("last", "best")


def _spelling(name: str) -> str:
    """'T-shirt/top', 't_shirt top' and 'TSHIRTTOP' all read the same."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def slerp(start: np.ndarray, end: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Spherical interpolation: Gaussian noise keeps its typical length along the whole walk."""
    cosine = np.dot(start, end) / (np.linalg.norm(start) * np.linalg.norm(end))
    angle = np.arccos(np.clip(cosine, -1.0, 1.0))
    if angle < 1e-6:
        return np.outer(1 - fractions, start) + np.outer(fractions, end)
    return (np.outer(np.sin((1 - fractions) * angle), start) + np.outer(np.sin(fractions * angle), end)) / np.sin(angle)


class TrainedGenerator:
    def __init__(self, model, latent_dim: int, image_shape: tuple, class_names: list[str] | None,
                 output_activation: str):
        self.model = model
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.class_names = class_names
        self.output_activation = output_activation

    def class_index(self, name_or_index: str | int) -> int:
        if not self.class_names:
            raise UserError("this generator is not conditional; it takes no class")
        if isinstance(name_or_index, str):
            matches = [index for index, name in enumerate(self.class_names)
                       if _spelling(name) == _spelling(name_or_index)]
            if matches:
                return matches[0]
            if not name_or_index.strip().isdigit():
                raise UserError(f"class {name_or_index!r} is unknown; allowed: {', '.join(self.class_names)} "
                                f"or an index 0-{len(self.class_names) - 1}")
            name_or_index = int(name_or_index)
        if not 0 <= name_or_index < len(self.class_names):
            raise UserError(f"class index {name_or_index} is out of range; allowed: 0-{len(self.class_names) - 1} "
                            f"({', '.join(self.class_names)})")
        return int(name_or_index)

    def _labels(self, n: int, class_index: int | None) -> np.ndarray | None:
        if not self.class_names:
            if class_index is not None:
                raise UserError("this generator is not conditional; it takes no class")
            return None
        if class_index is None:
            return np.arange(n) % len(self.class_names)
        return np.full(n, self.class_index(class_index))

    def _generate(self, noise: np.ndarray, class_index: int | None) -> np.ndarray:
        from models.sampling import generate_uint8

        return generate_uint8(self.model, noise.astype(np.float32), self._labels(len(noise), class_index),
                              self.output_activation)

    def sample(self, n: int, seed: int | None = None, class_index: int | None = None) -> np.ndarray:
        """``n`` uint8 images (n, H, W, C); a conditional generator cycles through the classes unless given one."""
        from models.sampling import latent_vectors

        return self._generate(latent_vectors(np.random.default_rng(seed), n, self.latent_dim), class_index)

    def interpolate(self, frames: int, seed: int | None = None, class_index: int | None = None) -> np.ndarray:
        """A latent walk: ``frames`` images on the great circle between two random latent vectors."""
        from models.sampling import latent_vectors

        start, end = latent_vectors(np.random.default_rng(seed), 2, self.latent_dim)
        walk = slerp(start, end, np.linspace(0.0, 1.0, frames))
        if self.class_names and class_index is None:
            class_index = 0
        return self._generate(walk, class_index)


def load_generator(run_dir: str | Path, checkpoint: str = "last") -> TrainedGenerator:
    """The generator of a run at checkpoint ``last`` or ``best`` (``last`` falls back to generator.keras)."""
    run_dir = Path(run_dir)
    if checkpoint not in CHECKPOINT_SLOTS:
        raise UserError(f"checkpoint {checkpoint!r} is not allowed; allowed: {', '.join(CHECKPOINT_SLOTS)}")
    config, problem = run_folder.read_config(run_dir)
    problem = problem or run_folder.generator_config_problem(config)
    if problem:
        raise UserError(f"{run_dir}: not a run folder ({problem})")

    from models import builders, networks
    from models.checkpoints import Checkpoints

    checkpoints = Checkpoints(run_dir)
    exported = run_dir / run_folder.GENERATOR_FILE
    if checkpoints.path(checkpoint) is not None:
        model = builders.build_generator(config)
        # Runs with an EMA generator are sampled from the average, as their grids and generator.keras are.
        group = "generator_ema" if config.get("ema_kimg") is not None else "generator"
        checkpoints.restore({group: model.variables}, checkpoint)
        from models.networks.spectral import normalize_spectral_kernels

        normalize_spectral_kernels(model)  # kernels trained on JAX are stored before normalization
    elif checkpoint == "last" and exported.is_file():
        import keras

        import models.networks.shapes  # noqa: F401  (registers the shapes generator's renderer with Keras)

        model = keras.saving.load_model(exported)
    else:
        raise UserError(f"{run_dir}: has no '{checkpoint}' checkpoint"
                        + (" (best is kept only when metric_evaluate is set)" if checkpoint == "best" else ""))
    conditional = networks.is_conditional(config["generator"])
    return TrainedGenerator(model, config["latent_dim"], tuple(config["image_shape"]),
                            config.get("class_names") if conditional else None,
                            builders.output_activation(config))


EPILOG = """\
examples:
  python -m models.generate --run runs/logos --n 64 --seed 1 --out logos.png
  python -m models.generate --run runs/fashion --n 8 --class Sneaker --out sneakers/
  python -m models.generate --run runs/fashion --n 80 --checkpoint best --out all_classes.png
  python -m models.generate --run runs/logos --interpolate --n 10 --seed 3 --out walk.png

--out ending in .png writes one grid (a latent walk: one strip); any other --out is a folder of single
PNGs. A conditional model without --class gives one row per class.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.generate", description="Generate images from a trained run.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="run folder made by models.train")
    parser.add_argument("--n", type=int, default=64,
                        help="images to generate (a conditional model without --class: per class row, divided "
                             "among the classes); with --interpolate: frames of the walk (default: 64)")
    parser.add_argument("--class", dest="class_name", metavar="NAME|INDEX",
                        help="class of a conditional model, by name in any spelling or by index (default: all)")
    parser.add_argument("--seed", type=int, help="random seed; the same seed gives the same images (default: random)")
    parser.add_argument("--checkpoint", choices=CHECKPOINT_SLOTS, default="last",
                        help="'last' or 'best' (by the run's metric) checkpoint (default: last)")
    parser.add_argument("--interpolate", action="store_true",
                        help="write a latent walk between two random points instead of independent samples")
    parser.add_argument("--out", required=True, metavar="GRID.png|DIR", help="a .png grid, or a folder of PNGs")
    quiet.add_verbose_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 1:
        raise UserError(f"--n {args.n}: must be at least 1")
    (check_output_file if Path(args.out).suffix.lower() == ".png" else check_output_folder)(args.out, "--out")
    generator = load_generator(args.run, args.checkpoint)
    class_index = None if args.class_name is None else generator.class_index(args.class_name)
    columns = None
    if args.interpolate:
        images = generator.interpolate(args.n, args.seed, class_index)
        columns = args.n
    elif generator.class_names and class_index is None:
        per_class = math.ceil(args.n / len(generator.class_names))
        images = np.concatenate([generator.sample(per_class, args.seed, index)
                                 for index in range(len(generator.class_names))])
        columns = per_class
    else:
        images = generator.sample(args.n, args.seed, class_index)
    out = Path(args.out)
    if out.suffix.lower() == ".png":
        save_png(out, image_grid(images, columns))
        print(f"wrote {out} ({len(images)} images)")
    else:
        prefix = "frame" if args.interpolate else "sample"
        for index, image in enumerate(images):
            save_png(out / f"{prefix}_{index:04d}.png", image)
        print(f"wrote {len(images)} PNGs to {out}/")
    return 0


if __name__ == "__main__":
    cli.run(main)
