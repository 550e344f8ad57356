"""Time the vector generator's renderer, forward and backward, against the networks of a training step.

    python bench/vector_render.py                      # batch 32, 56 px, the logos_vector preset's parts
    python bench/vector_render.py --config configs/logos_vector.json --batch 64

Each figure is milliseconds per forward and backward pass on this machine (TensorFlow), the median of
interleaved rounds in one process: the renderer alone (fused, as training runs it), the whole vector generator (its dense layers, palette
and renderer), the conv generator of configs/logos_dcgan.json that it replaces, and the discriminator of the
given config. The ratios say what the renderer costs next to the networks it trains with.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from infra import cli  # noqa: E402  (after the path insert, so the script runs from anywhere)
from infra.errors import UserError  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python bench/vector_render.py",
        description="Milliseconds per forward and backward pass of the vector renderer, the vector generator, "
                    "the conv generator of logos_dcgan and the config's discriminator (TensorFlow, this machine).")
    parser.add_argument("--config", default=str(PROJECT_ROOT / "configs" / "logos_vector.json"),
                        help="a config with a vector generator (default: configs/logos_vector.json)")
    parser.add_argument("--batch", type=int, default=32, help="images per pass (default: 32)")
    parser.add_argument("--size", type=int, default=56, help="image side in pixels (default: 56)")
    parser.add_argument("--repeats", type=int, default=20, help="timed passes of each per round (default: 20)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds; each figure is its median round (default: 5)")
    args = parser.parse_args(argv)
    for name in ("batch", "size", "repeats", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: {getattr(args, name)}; expected a positive whole number")
    return args


def compiled_pass(function, inputs, variables):
    """Forward and backward through ``function`` (gradients for ``variables`` and the inputs), compiled as the
    training step's graph is, after one warm-up pass: a callable that runs ``repeats`` passes and returns the
    milliseconds per pass."""
    import tensorflow as tf

    @tf.function
    def forward_and_backward():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(tf.square(function(inputs)))
        return tape.gradient(loss, [inputs, *variables])

    forward_and_backward()

    def milliseconds(repeats: int) -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            gradients = forward_and_backward()
        gradients[0].numpy()
        return (time.perf_counter() - start) * 1000.0 / repeats
    return milliseconds


def median_milliseconds(passes: dict, repeats: int, rounds: int) -> dict:
    """Each pass timed in ``rounds`` interleaved rounds of ``repeats``, and the median round of each: a shared
    machine's slow spells then fall on all of them alike, and one slow round does not move the figure."""
    times = {name: [] for name in passes}
    for _ in range(rounds):
        for name, milliseconds in passes.items():
            times[name].append(milliseconds(repeats))
    return {name: float(np.median(values)) for name, values in times.items()}


def main(argv=None) -> None:
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from models.config import load_config, resolve
    from models.networks.discriminator import build_discriminator
    from models.networks.generator import build_generator

    if keras.backend.backend() != "tensorflow":
        raise UserError(f"KERAS_BACKEND {keras.backend.backend()!r}: only tensorflow is measured here")
    config = resolve(load_config(args.config), args.config)
    if config["generator"].get("architecture") != "vector":
        raise UserError(f"--config {args.config}: its generator.architecture is "
                        f"{config['generator'].get('architecture')!r}; give a config with a vector generator")
    shape, latent = (args.size, args.size, 3), config["latent_dim"]
    generator = build_generator(config["generator"], shape, latent, None)
    reference = build_generator(resolve(load_config(PROJECT_ROOT / "configs" / "logos_dcgan.json"))["generator"],
                                shape, latent, None)
    discriminator = build_discriminator(config["discriminator"], shape, None)
    renderer = generator.get_layer("vector_renderer")
    scenes = keras.Model(generator.inputs, renderer.input)

    rng = np.random.default_rng(0)
    z = tf.constant(rng.normal(size=(args.batch, latent)).astype("float32"))
    scene = tf.constant(scenes(z))
    images = tf.constant(rng.uniform(-1, 1, size=(args.batch, *shape)).astype("float32"))
    timings = median_milliseconds({
        "renderer": compiled_pass(renderer, scene, []),
        "vector generator": compiled_pass(lambda x: generator(x, training=True), z, generator.trainable_variables),
        "conv generator (logos_dcgan)": compiled_pass(lambda x: reference(x, training=True), z,
                                                      reference.trainable_variables),
        "discriminator": compiled_pass(lambda x: discriminator(x, training=True), images,
                                       discriminator.trainable_variables),
    }, args.repeats, args.rounds)
    print(f"forward and backward, batch {args.batch}, {args.size} px, {len(renderer.layout.parts)} parts "
          f"({os.cpu_count()} CPUs):")
    for name, milliseconds in timings.items():
        print(f"  {name:30s} {milliseconds:8.2f} ms")
    print(f"renderer / conv generator: x{timings['renderer'] / timings['conv generator (logos_dcgan)']:.2f}")
    print(f"renderer / discriminator:  x{timings['renderer'] / timings['discriminator']:.2f}")


if __name__ == "__main__":
    cli.run(main)
