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
from infra.atomic import write_text
from infra.errors import UserError
from infra.output_paths import check_output_file, check_output_folder
from models import run_folder
from models.images import image_grid, save_png
from models.labels import default_labels
from models.seeds import parse_seeds
from models.vector_samples import VectorSamples, parse_colours, renderer_of

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
                 output_activation: str, class_shares: list[float] | None = None):
        self.model = model
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.class_names = class_names
        self.class_shares = class_shares  # clusters' shares of the data (data_clusters); null: equal classes
        self.output_activation = output_activation
        renderer = renderer_of(model)
        # A vector generator's samples are scenes: any size, any palette, SVG (models.vector_samples).
        self.vector = VectorSamples(model, renderer) if renderer is not None else None

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

    def default_labels(self, n: int) -> np.ndarray:
        """The classes of n samples asked for without one (models.labels.default_labels)."""
        return default_labels(n, len(self.class_names), self.class_shares)

    def _labels(self, n: int, class_index: int | None) -> np.ndarray | None:
        if not self.class_names:
            if class_index is not None:
                raise UserError("this generator is not conditional; it takes no class")
            return None
        if class_index is None:
            return self.default_labels(n)
        return np.full(n, self.class_index(class_index))

    def _generate(self, noise: np.ndarray, class_index: int | None, truncation: float = 1.0,
                  size: int | None = None, colours: str | None = None) -> np.ndarray:
        from models.images import to_uint8
        from models.sampling import generate_uint8

        noise, labels = self._inputs(noise, class_index, truncation)
        if self.vector is None:
            if size is not None or colours is not None:
                raise UserError(f"{'--size' if size is not None else '--colours'}: this generator draws pixels "
                                "at its trained size; only a vector generator (architecture 'vector') renders at "
                                "any size or with other colours")
            return generate_uint8(self.model, noise, labels, self.output_activation)
        scenes = self._scenes(noise, labels, colours)
        return to_uint8(self.vector.render(scenes, size), self.output_activation)

    def _inputs(self, noise: np.ndarray, class_index: int | None, truncation: float):
        """Truncation scales the latent vectors towards their mean (0): samples more typical and less varied."""
        if not 0.0 <= truncation <= 1.0:
            raise UserError(f"truncation {truncation}: allowed 0 (the average sample) to 1 (no truncation)")
        return (noise * truncation).astype(np.float32), self._labels(len(noise), class_index)

    def _scenes(self, noise: np.ndarray, labels: np.ndarray | None, colours: str | None) -> np.ndarray:
        scenes = np.concatenate([
            self.vector.scenes([noise[start:start + 256]] if labels is None else
                               [noise[start:start + 256], labels[start:start + 256].astype(np.int32)])
            for start in range(0, len(noise), 256)])
        if colours is not None:
            scenes = self.vector.recolour(scenes, parse_colours(colours, self.vector.layout.palette,
                                                                self.vector.renderer.value_range,
                                                                self.image_shape[-1]))
        return scenes

    def svg(self, noise: np.ndarray, class_index: int | None = None, truncation: float = 1.0,
            size: int | None = None, colours: str | None = None) -> list[str]:
        """One SVG document per latent vector: exactly the parts, colours and order the generator renders."""
        if self.vector is None:
            raise UserError("format svg: this generator draws pixels; only a vector generator (architecture "
                            "'vector') writes SVG")
        noise, labels = self._inputs(noise, class_index, truncation)
        return self.vector.svg(self._scenes(noise, labels, colours), size)

    def latents(self, n: int, seed: int | None = None) -> np.ndarray:
        from models.sampling import latent_vectors

        return latent_vectors(np.random.default_rng(seed), n, self.latent_dim)

    def generate(self, noise: np.ndarray, class_index: int | None = None, **look) -> np.ndarray:
        """uint8 images for these latent vectors (e.g. :meth:`seed_latents`); ``look`` as for :meth:`sample`."""
        return self._generate(noise, class_index, **look)

    def seed_latents(self, seeds: Sequence[int]) -> np.ndarray:
        """One latent vector per seed, the same for a seed whatever else is asked (StyleGAN2-ADA's --seeds)."""
        from models.sampling import latent_vectors

        return np.concatenate([latent_vectors(np.random.default_rng(seed), 1, self.latent_dim) for seed in seeds])

    def sample(self, n: int, seed: int | None = None, class_index: int | None = None, **look) -> np.ndarray:
        """``n`` uint8 images (n, H, W, C); a conditional generator draws its classes as :meth:`default_labels`
        does unless given one. ``look``: truncation, size and colours (the last two for a vector generator)."""
        return self._generate(self.latents(n, seed), class_index, **look)

    def interpolate(self, frames: int, seed: int | None = None, class_index: int | None = None,
                    **look) -> np.ndarray:
        """A latent walk: ``frames`` images on the great circle between two random latent vectors."""
        from models.sampling import latent_vectors

        start, end = latent_vectors(np.random.default_rng(seed), 2, self.latent_dim)
        walk = slerp(start, end, np.linspace(0.0, 1.0, frames))
        if self.class_names and class_index is None:
            class_index = 0
        return self._generate(walk, class_index, **look)


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

        import models.networks.shapes  # noqa: F401  (register the shapes and vector generators' renderers with Keras)
        import models.networks.vector  # noqa: F401

        model = keras.saving.load_model(exported)
    else:
        raise UserError(f"{run_dir}: has no '{checkpoint}' checkpoint"
                        + (" (best is kept only when metric_evaluate is set)" if checkpoint == "best" else ""))
    conditional = networks.is_conditional(config["generator"])
    return TrainedGenerator(model, config["latent_dim"], tuple(config["image_shape"]),
                            config.get("class_names") if conditional else None,
                            builders.output_activation(config),
                            config.get("class_shares") if conditional else None)


EPILOG = """\
examples:
  python -m models.generate --run runs/logos --n 64 --seed 1 --out logos.png
  python -m models.generate --run runs/fashion --n 8 --class Sneaker --out sneakers/
  python -m models.generate --run runs/fashion --n 80 --checkpoint best --out all_classes.png
  python -m models.generate --run runs/logos --interpolate --n 10 --seed 3 --out walk.png

  python -m models.generate --run runs/logos --seeds 0-35 --truncation 0.7 --out picked/
  python -m models.generate --run runs/logos --n 16 --seed 5 --format svg --out svgs/
  python -m models.generate --run runs/logos --seeds 3,8 --size 1024 --colours '#e11d48,#111827' --out big/

--out ending in .png writes one grid (a latent walk: one strip); any other --out is a folder of single
images, sample_NNNN or, with --seeds, seedNNNN (a name ending in another file type, e.g. .gif or .jpg, is
refused rather than made a folder). A conditional model without --class gives one row per class.

--truncation PSI scales every latent vector by PSI before it enters the generator: 1 draws from the whole
distribution it learned; lower values trade variety for more typical, cleaner samples (0 is the average one).
A vector generator (architecture 'vector') also renders at any --size, repaints its samples with --colours
(its palette's size: background first; or one fewer: the mark's colours, background kept) and writes
--format svg: one standalone SVG per sample with exactly the parts, colours and order it renders.
"""

MAX_SEEDS = 10000


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
    parser.add_argument("--seeds", metavar="LIST",
                        help="one image per seed, e.g. 0-35 or 1,5,9; file names carry the seed (instead of --n "
                             "and --seed)")
    parser.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                        help="scale the latent vectors by PSI in [0, 1]: lower is more typical, less varied "
                             "(default: 1, no truncation)")
    parser.add_argument("--format", choices=("png", "svg"), default="png",
                        help="png images, or svg documents (vector generators; --out a folder) (default: png)")
    parser.add_argument("--size", type=int, metavar="PX",
                        help="render at this many pixels on the longer side (vector generators; default: the "
                             "trained size)")
    parser.add_argument("--colours", metavar="'#RRGGBB,...'",
                        help="paint the samples with these palette colours (vector generators): as many as the "
                             "palette (background first), or one fewer (the background kept); each '#rrggbb', "
                             "'#rgb' or a CSS name such as navy")
    parser.add_argument("--out", required=True, metavar="GRID.png|DIR",
                        help="a .png grid, or a folder of PNGs (or SVGs with --format svg)")
    quiet.add_verbose_argument(parser)
    return parser


# --out names that look like a file generate cannot write: a folder of that name would surprise.
OTHER_FILE_SUFFIXES = {".gif", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".svg", ".svgz", ".pdf", ".zip",
                       ".npz", ".json"}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 1:
        raise UserError(f"--n {args.n}: must be at least 1")
    seeds = None if args.seeds is None else parse_seeds(args.seeds, MAX_SEEDS)
    if seeds is not None and (args.seed is not None or args.interpolate):
        raise UserError("--seeds gives one image per seed; drop --seed and --interpolate, or drop --seeds")
    suffix = Path(args.out).suffix.lower()
    if suffix in OTHER_FILE_SUFFIXES:
        raise UserError(f"--out {args.out}: generate writes a .png grid or a folder of images (--format png or svg), "
                        f"not a {suffix} file")
    if args.format == "svg" and (suffix == ".png" or args.interpolate):
        raise UserError(f"--format svg writes one SVG per sample into a folder; give --out a folder (not "
                        f"{args.out}) and no --interpolate")
    if not 0.0 <= args.truncation <= 1.0:
        raise UserError(f"--truncation {args.truncation}: allowed 0 (the average sample) to 1 (no truncation)")
    (check_output_file if Path(args.out).suffix.lower() == ".png" else check_output_folder)(args.out, "--out")
    generator = load_generator(args.run, args.checkpoint)
    if generator.vector is None and (args.format == "svg" or args.size is not None or args.colours is not None):
        flag = "--format svg" if args.format == "svg" else "--size" if args.size is not None else "--colours"
        raise UserError(f"{flag}: {args.run} has a generator that draws pixels at its trained size; SVG, --size "
                        "and --colours need a vector generator (generator.architecture 'vector', e.g. "
                        "configs/logos_vector.json)")
    class_index = None if args.class_name is None else generator.class_index(args.class_name)
    look = {"truncation": args.truncation, "size": args.size, "colours": args.colours}
    if args.format == "svg":
        noise = generator.seed_latents(seeds) if seeds is not None else generator.latents(args.n, args.seed)
        names = _file_names(seeds, len(noise), "sample")
        for name, document in zip(names, generator.svg(noise, class_index, **look)):
            write_text(Path(args.out) / f"{name}.svg", document)
        print(f"wrote {len(names)} SVGs to {Path(args.out)}/")
        return 0
    columns = None
    if seeds is not None:
        images = generator.generate(generator.seed_latents(seeds), class_index, **look)
    elif args.interpolate:
        images = generator.interpolate(args.n, args.seed, class_index, **look)
        columns = args.n
    elif generator.class_names and class_index is None:
        per_class = math.ceil(args.n / len(generator.class_names))
        images = np.concatenate([generator.sample(per_class, args.seed, index, **look)
                                 for index in range(len(generator.class_names))])
        columns = per_class
    else:
        images = generator.sample(args.n, args.seed, class_index, **look)
    out = Path(args.out)
    if out.suffix.lower() == ".png":
        save_png(out, image_grid(images, columns))
        print(f"wrote {out} ({len(images)} images)")
    else:
        for name, image in zip(_file_names(seeds, len(images), "frame" if args.interpolate else "sample"), images):
            save_png(out / f"{name}.png", image)
        print(f"wrote {len(images)} PNGs to {out}/")
    return 0


def _file_names(seeds: list[int] | None, count: int, prefix: str) -> list[str]:
    return [f"seed{seed:04d}" for seed in seeds] if seeds is not None else [f"{prefix}_{index:04d}"
                                                                            for index in range(count)]


if __name__ == "__main__":
    cli.run(main)
