"""Can the vector generator start from the scenes fitted to real logos? A warm start without a discriminator.

    python bench/scene_prior.py --data data/colour_logos_56.npz --count 1024

1. Fit the scenes of --count logos directly (bench/vector_fit.py's fit, palette entry 0 held at the generator's
   background as the generator holds it).
2. Train the generator by IMLE in scene space (Li & Malik 2019): for each fitted scene of a batch, the nearest of
   --candidates generated scenes per scene is pulled towards it (distances on standardized values); no
   rendering, no discriminator, about 60 steps a second on 2 cores.
3. Score --samples samples of that generator against the whole set (KID, as bench/quality.py does), beside the
   fits themselves, and write a picture: generator samples, then fits over their logos.
With --into-run RUN (a run of the same config and data, trained one step) the generator is written into the
run's last checkpoint, so that `python -m models.train --resume RUN --steps N` goes on from it as a GAN.
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
FIT_CHUNK = 512  # logos fitted at once: the renderer's memory grows with it
SAMPLE_CHUNK = 250


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python bench/scene_prior.py", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a dataset (.npz) of logos")
    parser.add_argument("--config", default=str(PROJECT_ROOT / "configs" / "logos_vector.json"),
                        help="a config with a vector generator (default: logos_vector); with --into-run, the run's")
    parser.add_argument("--count", type=int, default=0, help="logos fitted, drawn with seed 0 (default: 0, all)")
    parser.add_argument("--fit-steps", type=int, default=200, help="Adam steps per fit (default: 200)")
    parser.add_argument("--imle-steps", type=int, default=3000, help="IMLE steps of the generator (default: 3000)")
    parser.add_argument("--candidates", type=int, default=32,
                        help="generated scenes per fitted scene in each IMLE step (default: 32)")
    parser.add_argument("--batch", type=int, default=64, help="fitted scenes per IMLE step (default: 64)")
    parser.add_argument("--samples", type=int, default=2000, help="generator samples scored (default: 2000)")
    parser.add_argument("--into-run", metavar="RUN",
                        help="write the generator (and its EMA) into RUN's last checkpoint")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "out" / "scene_prior.png"),
                        help="picture: 32 generator samples, then 16 fits over their logos")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error(f"--count: {args.count}; expected a whole number, 0 for all")
    for name in ("fit_steps", "imle_steps", "candidates", "batch", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: {getattr(args, name)}; expected a positive whole number")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf
    from tqdm import tqdm

    from bench.vector_fit import fit_scenes
    from evaluation.evaluator import Evaluator
    from models.checkpoints import Checkpoints
    from models.config import load_config, resolve
    from models.images import image_grid, save_png
    from models.networks.generator import build_generator
    from models.train import settle_background, settle_palette
    from preprocessing.dataset import load_dataset

    if keras.backend.backend() != "tensorflow":
        raise UserError(f"KERAS_BACKEND {keras.backend.backend()!r}: the fit runs on tensorflow")
    config_path = Path(args.into_run) / "config.json" if args.into_run else Path(args.config)
    config = resolve(load_config(config_path), config_path)
    if config["generator"].get("architecture") != "vector":
        raise UserError(f"{config_path}: its generator is not a vector generator")
    dataset = load_dataset(args.data)
    settle_palette(config, dataset)
    settle_background(config, dataset)
    images = dataset.x
    count = args.count or len(images)
    if count > len(images):
        raise UserError(f"--count {count}: {args.data} holds only {len(images)} images")
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(images), count, replace=False)
    targets = images[chosen].astype("float32") / 127.5 - 1.0
    latent_dim = config["latent_dim"]
    generator = build_generator(config["generator"], targets.shape[1:], latent_dim, None)
    renderer = generator.get_layer("vector_renderer")
    scene_model = keras.Model(generator.inputs, generator.get_layer("vector_scene").output)

    start = time.perf_counter()
    scenes = np.concatenate([
        fit_scenes(renderer, targets[first:first + FIT_CHUNK], args.fit_steps, first,
                   f"Fitting logos {first + 1}-{min(first + FIT_CHUNK, count)} of {count}",
                   config["generator"]["palette_background"])
        for first in range(0, count, FIT_CHUNK)])
    print(f"fitted {count} scenes ({scenes.shape[1]} values each) in {time.perf_counter() - start:.0f} s")

    # Standardized and clipped: a part's raw choice logits run far where it is plainly on or off.
    mean, std = scenes.mean(0), scenes.std(0) + 1e-3
    standard = np.clip((scenes - mean) / std, -3, 3).astype("float32")
    mean, std = tf.constant(mean), tf.constant(std)
    optimizer = keras.optimizers.Adam(1e-3)
    weights = scene_model.trainable_weights

    @tf.function
    def imle_step(batch_targets, latents):
        candidates = tf.clip_by_value((scene_model(latents) - mean) / std, -3, 3)
        distances = tf.reduce_sum(tf.square(batch_targets[:, None, :] - candidates[None, :, :]), axis=-1)
        nearest = tf.gather(latents, tf.argmin(distances, axis=1))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square((scene_model(nearest, training=True) - mean) / std - batch_targets))
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    start, losses = time.perf_counter(), []
    batch = min(args.batch, count)
    for _ in tqdm(range(args.imle_steps), desc="IMLE", unit="step"):
        latents = rng.normal(size=(batch * args.candidates, latent_dim)).astype("float32")
        losses.append(float(imle_step(standard[rng.choice(count, batch, replace=False)], latents)))
    print(f"IMLE: {args.imle_steps} steps in {time.perf_counter() - start:.0f} s, scene loss "
          f"{np.mean(losses[:50]):.3f} -> {np.mean(losses[-50:]):.3f} (standardized)")

    if args.into_run:
        write_into_run(Checkpoints(args.into_run), generator)
    to_uint8 = lambda drawn: np.round((drawn + 1.0) * 127.5).clip(0, 255).astype("uint8")  # noqa: E731
    samples = np.concatenate([
        to_uint8(generator(rng.normal(size=(SAMPLE_CHUNK, latent_dim)).astype("float32")).numpy())
        for _ in range(0, args.samples, SAMPLE_CHUNK)])[:args.samples]
    fitted = to_uint8(renderer(scenes[:args.samples]).numpy())
    evaluator = Evaluator(images, ["kid"], progress=False)
    for label, candidates in (("the generator's samples", samples), ("the fitted scenes", fitted)):
        result = evaluator.evaluate(candidates)
        print(f"  KID x1e3 of {label:<24} {1e3 * result['kid']:.1f} +- {1e3 * result['kid_std']:.1f}  "
              f"({len(candidates)} against the {len(images)} logos)")
    shown = min(16, count)
    save_png(args.out, image_grid(np.concatenate([samples[:32], fitted[:shown], images[chosen[:shown]]]), columns=8))
    print(f"wrote {args.out}")


def write_into_run(checkpoints, generator) -> None:
    """The generator's values in place of the generator's and its EMA's in the run's last checkpoint."""
    import numpy as np

    from models.checkpoints import VARIABLES_FILE

    path = checkpoints.path()
    if path is None:
        raise UserError(f"--into-run {checkpoints.folder}: no checkpoint there; train the run one step first")
    with np.load(path / VARIABLES_FILE, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    values = [np.asarray(variable.numpy()) for variable in generator.variables]
    for group in ("generator", "generator_ema"):
        names = sorted(name for name in arrays if name.startswith(group + "/"))
        if names and len(names) != len(values):
            raise UserError(f"--into-run {checkpoints.folder}: its {group} has {len(names)} variables, this config's "
                            f"{len(values)}; give a run of the same config")
        arrays.update(zip(names, values))
    checkpoints.write(arrays, checkpoints.read_info(path))
    print(f"wrote the generator into {checkpoints.path()}")


if __name__ == "__main__":
    cli.run(main)
