"""Time the shapes generator's renderer, forward and backward, fused (as training runs it) and op by op.

    python bench/shapes_render.py                      # batch 32, 8 parts, 56 px, TensorFlow
    python bench/shapes_render.py --parts 16 --size 112

On TensorFlow the renderer is XLA-compiled on its own inside the uncompiled CPU training step
(models.backends.fused); this prints both timings and their ratio, measured in the same process. On JAX the
jitted step fuses the renderer anyway, so there is nothing to compare.
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python bench/shapes_render.py",
        description="Milliseconds per forward and backward pass of the shapes renderer, fused and op by op "
                    "(TensorFlow).")
    parser.add_argument("--batch", type=int, default=32, help="images per pass (default: 32)")
    parser.add_argument("--parts", type=int, default=8, help="primitives per image, shape_count (default: 8)")
    parser.add_argument("--size", type=int, default=56, help="image side in pixels (default: 56)")
    parser.add_argument("--repeats", type=int, default=100, help="timed passes of each (default: 100)")
    args = parser.parse_args(argv)
    for name in ("batch", "parts", "size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: {getattr(args, name)}; expected a positive whole number")
    return args


def milliseconds_per_pass(draw, raw, repeats: int) -> float:
    import tensorflow as tf

    @tf.function
    def forward_and_backward():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(draw(raw)))
        return tape.gradient(loss, raw)

    forward_and_backward()  # trace and compile outside the timing
    start = time.perf_counter()
    for _ in range(repeats):
        gradient = forward_and_backward()
    gradient.numpy()  # wait for the last pass
    return (time.perf_counter() - start) * 1000.0 / repeats


def main(argv=None) -> None:
    args = parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    from models.networks.shapes import PARAMETERS, ShapeRenderer, starting_layout

    if keras.backend.backend() != "tensorflow":
        raise UserError(f"KERAS_BACKEND {keras.backend.backend()!r}: only tensorflow is measured here; JAX's "
                        "jitted step fuses the renderer itself")
    rng = np.random.default_rng(0)
    layout = np.array(starting_layout(args.parts), dtype="float32").reshape(args.parts, len(PARAMETERS))
    raw = tf.Variable(layout + rng.normal(size=(args.batch, args.parts, len(PARAMETERS))).astype("float32"))
    renderer = ShapeRenderer(args.size, args.size)
    fused = milliseconds_per_pass(renderer, raw, args.repeats)
    op_by_op = milliseconds_per_pass(renderer.draw_op_by_op, raw, args.repeats)
    print(f"renderer, batch {args.batch}, {args.parts} parts, {args.size} px, forward and backward "
          f"({os.cpu_count()} CPUs):")
    print(f"  op by op  {op_by_op:8.2f} ms")
    print(f"  fused     {fused:8.2f} ms")
    print(f"fused / op by op: x{fused / op_by_op:.2f}")


if __name__ == "__main__":
    cli.run(main)
