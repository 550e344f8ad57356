"""Score generated images against real ones: FID, KID, MMD, class accuracy.

Two forms: a trained run (its generator samples the images, its config names the real data), or any
two image sets. Inception statistics of the real set are cached per content hash, so evaluating the
next checkpoint against the same data only embeds the generated images.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from infra import cli, quiet
from infra.errors import UserError
from models import run_folder
from models.labels import default_labels

DESCRIPTION = "Score generated images against real ones: FID, KID, MMD, class accuracy."
DEFAULT_METRICS = "fid,kid"
EPILOG = """\
examples:
  python -m models.evaluate --real data/fashion_a.npz --fake data/fashion_b.npz --metrics fid,kid,mmd
  python -m models.evaluate --real fashion_mnist --fake samples/ --json
  python -m models.evaluate --run runs/fashion --checkpoint best --metrics fid,kid,class_accuracy

metrics (lower is better unless noted):
  fid             Frechet Inception Distance, canonical network and resize (comparable with papers
                  only for equal set sizes; biased upwards for small sets)
  kid             Kernel Inception Distance, unbiased (quote it for small sets, e.g. 2,000 logos);
                  reported with the std over 100 subsets of up to 1,000 images
                  (at most half the smaller set)
  mmd             unbiased MMD^2 on pixels of the first 250 images, RBF kernel whose bandwidth is the
                  median distance between real images (needs equal image sizes)
  class_accuracy  higher is better: share of generated images a CNN trained on the labelled real
                  data assigns to the requested class (conditional runs only); printed beside
                  the judge's own accuracy on 10% of the real images it held out (JSON:
                  class_judge_held_out_accuracy), the ceiling for generated images

The FID network weights: --inception-weights PATH, $LOGOGAN_INCEPTION_WEIGHTS, fid/inception-2015-12-05.pt
in the shared assets folder $LOGOGAN_SHARED (default ../shared), or a one-time download into the user cache
folder when online. The user cache folder: $LOGOGAN_CACHE_DIR, else $XDG_CACHE_HOME/logogan, else
~/.cache/logogan.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.evaluate", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    source = parser.add_argument_group("what to compare (either --run, or --real with --fake)")
    source.add_argument("--run", metavar="DIR", help="a training run folder (runs/NAME): samples its generator and "
                        "compares with the real data its config.json names (or --real)")
    source.add_argument("--checkpoint", choices=("last", "best"), default="last",
                        help="with --run: which checkpoint's generator to sample (default: last)")
    source.add_argument("--samples", type=int, metavar="N", default=None,
                        help="with --run: images to generate (default: the run's eval_samples, else 1000)")
    source.add_argument("--seed", type=int, default=0, help="with --run: noise seed for the samples (default: 0)")
    source.add_argument("--real", metavar="SOURCE", help="real images: a .npz dataset, a folder of image files or "
                        "IDX gzip files, fashion_mnist, mnist or an s3:// .npz URL")
    source.add_argument("--fake", metavar="SOURCE", help="generated images: a .npz dataset or a folder of image files")
    source.add_argument("--max-real", type=int, metavar="N", default=None,
                        help="use only the first N real images (default: all)")
    parser.add_argument("--metrics", default=DEFAULT_METRICS,
                        help=f"comma-separated: fid, kid, mmd, class_accuracy (default: {DEFAULT_METRICS})")
    parser.add_argument("--inception-weights", metavar="PATH", default=None,
                        help="the FID network archive inception-2015-12-05.pt (default: $LOGOGAN_INCEPTION_WEIGHTS, "
                        "else $LOGOGAN_SHARED/fid, else the downloaded copy in the user cache folder)")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="where real-set statistics are cached (default: $LOGOGAN_EVAL_CACHE, else "
                        "eval in the user cache folder)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per Inception batch (default: 32)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    quiet.add_verbose_argument(parser)
    return parser


def load_image_source(source: str, role: str, data_dir: str | None = None, image_size: int | None = None):
    """(images, labels, class_names) from a folder of image files, or any source the trainer reads
    (``data_dir`` and ``image_size`` as in a run's config, so real images match what it trained on)."""
    from evaluation.image_folder import image_files, load_image_folder
    from models.data import load_training_data

    path = Path(source)
    if path.is_dir() and image_files(path):
        return load_image_folder(path), None, None
    if role == "generated" and not (path.is_dir() or path.suffix == ".npz"):
        raise UserError(f"--fake {source}: give a .npz dataset or a folder of image files")
    dataset = load_training_data(source, data_dir, image_size)
    return dataset.x, dataset.y, dataset.class_names


def run_real_images(config: dict):
    """(images, labels, class_names): a run's own data as it trained on it, from its config.json (a folder of
    images is the dataset built from it: SVG and raster files alike, at the run's size; clusters as classes
    where the run found them)."""
    from models.data import load_training_data, with_clusters

    size = config.get("image_size") or (config.get("image_shape") or [None])[0]
    dataset = with_clusters(load_training_data(config["data_path"], config.get("data_dir"), size),
                            config.get("data_clusters"))
    return dataset.x, dataset.y, dataset.class_names


def sample_run(run_dir: Path, checkpoint: str, count: int | None, seed: int):
    """Images from a run's generator and the run's config; a conditional one's classes in turn, or in the data's
    proportions where the trainer found clusters (models.labels.default_labels)."""
    from models.generate import load_generator

    config, problem = run_folder.read_config(run_dir)
    if problem:
        raise UserError(f"--run {run_dir}: {problem}; give a training run folder such as runs/NAME")
    generator = load_generator(run_dir, checkpoint)
    count = count or config.get("eval_samples") or 1000
    if not generator.class_names:
        return generator.sample(count, seed=seed), None, config
    classes = len(generator.class_names)
    labels = default_labels(count, classes, config.get("class_shares"))
    images = np.empty((count, *generator.image_shape), dtype=np.uint8)
    for index in range(classes):
        chosen = labels == index
        images[chosen] = generator.sample(int(chosen.sum()), seed=seed + index, class_index=index)
    return images, labels, config


def format_table(results: dict[str, float], real_count: int, fake_count: int,
                 judge_accuracy: float | None = None) -> str:
    from evaluation.metrics import METRICS

    lines = [f"real images: {real_count}   generated images: {fake_count}", f"{'metric':<16}{'value':>14}  better"]
    for name, value in results.items():
        if name.endswith("_std"):
            continue
        spread = f" ± {results[name + '_std']:.6g}" if name + "_std" in results else ""
        lines.append(f"{name:<16}{value:>14.6g}  {METRICS.get(name, '')}{spread}")
    if judge_accuracy is not None:
        lines.append(f"class_accuracy is judged by a CNN trained on the real images; its own accuracy on held-out "
                     f"real images: {judge_accuracy:.4g} (the ceiling for generated ones)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from evaluation.metrics import parse_metrics

    metrics = parse_metrics(args.metrics)
    for flag, value in (("--samples", args.samples), ("--max-real", args.max_real), ("--batch-size", args.batch_size)):
        if value is not None and value < 2:
            raise UserError(f"{flag} {value}: must be at least 2")
    if args.run:
        if args.fake:
            raise UserError("--run samples the generated images itself; give either --run or --fake, not both")
        fake, fake_labels, config = sample_run(Path(args.run), args.checkpoint, args.samples, args.seed)
        real_source = args.real or config.get("data_path")
        if not real_source:
            raise UserError(f"--run {args.run}: its config.json names no data_path; give --real SOURCE")
        if args.real:
            real, real_labels, class_names = load_image_source(real_source, "real", config.get("data_dir"),
                                                               config.get("image_size"))
        else:
            real, real_labels, class_names = run_real_images(config)
    elif args.real and args.fake:
        fake, fake_labels, _ = load_image_source(args.fake, "generated")
        real, real_labels, class_names = load_image_source(args.real, "real")
        real_source = args.real
    else:
        raise UserError("nothing to compare: give --run DIR, or both --real SOURCE and --fake SOURCE")
    if args.max_real:
        real = real[:args.max_real]
        real_labels = None if real_labels is None else real_labels[:args.max_real]
    from evaluation.evaluator import Evaluator  # loads Keras and the Inception network

    evaluator = Evaluator(real, metrics, real_labels=real_labels, class_names=class_names, cache_dir=args.cache_dir,
                          inception_weights=args.inception_weights, batch_size=args.batch_size,
                          progress=not args.no_progress and sys.stderr.isatty())
    results = evaluator.evaluate(fake, fake_labels)
    # class_accuracy means little without the judge's own accuracy on real images beside it.
    judge_accuracy = evaluator.class_judge.real_accuracy if "class_accuracy" in results else None
    if args.json:
        report = {"real": str(real_source), "fake": args.fake or f"{args.run} ({args.checkpoint})",
                  "real_images": len(real), "generated_images": len(fake), "metrics": results}
        if judge_accuracy is not None:
            report["class_judge_held_out_accuracy"] = judge_accuracy
        print(json.dumps(report))
    else:
        print(format_table(results, len(real), len(fake), judge_accuracy))
    return 0


if __name__ == "__main__":
    cli.run(main)
