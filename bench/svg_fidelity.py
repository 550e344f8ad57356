"""How far a vector generator's SVGs lie from its own PNGs, at each edge softness.

    python bench/svg_fidelity.py                                   # the logos_vector preset, edges 0.3 and 0.5 px
    python bench/svg_fidelity.py --config bench/configs/colour_v16/lv_mixed_edge5.json --edge-px 0.3 0.4 0.5

The renderer draws anti-aliased edges `edge_px` wide (softer edges train better, colour_v15-v18 in
docs/experiments.md); an SVG has no such option, cairosvg draws it with exact pixel coverage. For random scenes
of the config's parts (an untrained generator's scenes with wide noise on the geometry, as
tests/models/test_vector.py draws them), this prints the mean absolute difference between cairosvg's rendering
of each SVG and the renderer's PNG at the trained size, in [0, 1] units: the mean over scenes and the worst scene.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from infra import cli  # noqa: E402  (after the path insert, so the script runs from anywhere)
from infra.errors import UserError  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python bench/svg_fidelity.py",
        description="Mean absolute difference between each random scene's SVG (rendered by cairosvg) and the "
                    "vector renderer's PNG of it, at the trained size, for each --edge-px.")
    parser.add_argument("--config", default=str(PROJECT_ROOT / "configs" / "logos_vector.json"),
                        help="a config with a vector generator (default: configs/logos_vector.json)")
    parser.add_argument("--edge-px", type=float, nargs="+", default=[0.3, 0.5], metavar="PX",
                        help="edge softnesses to compare, each replacing the config's generator.edge_px "
                             "(default: 0.3 0.5)")
    parser.add_argument("--count", type=int, default=18, help="random scenes per edge softness (default: 18)")
    parser.add_argument("--size", type=int, default=56, help="image side in pixels (default: 56)")
    args = parser.parse_args(argv)
    for name in ("count", "size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: {getattr(args, name)}; expected a positive whole number")
    return args


def _numpy(value):
    from keras import ops
    return {key: _numpy(item) for key, item in value.items()} if isinstance(value, dict) else \
        ops.convert_to_numpy(value)


def differences(generator_options: dict, size: int, latent: int, count: int) -> np.ndarray:
    """Mean |SVG - PNG| of each of ``count`` random scenes drawn by a generator built from the options."""
    import keras
    from keras import ops

    from infra.icons import render_svg
    from models.networks import vector
    from models.networks.generator import build_generator
    from models.vector_svg import scene_svg

    generator = build_generator(generator_options, (size, size, 3), latent, None)
    renderer = generator.get_layer("vector_renderer")
    rng = np.random.default_rng(0)
    flat = ops.convert_to_numpy(keras.Model(generator.inputs, renderer.input)([rng.normal(size=(count, latent))]))
    # An untrained generator's scenes barely differ; wide noise on the geometry (colours left in range) gives
    # parts of every size, position and overlap.
    noise = rng.normal(0, 1.0, flat.shape).astype("float32")
    noise[:, :renderer.layout.palette * 3] = 0
    flat = flat + noise
    images = (ops.convert_to_numpy(renderer(flat)) + 1) / 2
    decoded = _numpy(vector.decode(flat, renderer.layout))
    out = []
    for index in range(count):
        svg = scene_svg(decoded, index, renderer.layout, renderer.value_range, size, size)
        drawn = np.asarray(render_svg(svg, size), "float32") / 255
        out.append(float(np.abs(drawn - images[index]).mean()))
    return np.asarray(out)


def main(argv=None) -> None:
    args = parse_args(argv)
    from models.config import load_config, resolve

    config = resolve(load_config(args.config), args.config)
    if config["generator"].get("architecture") != "vector":
        raise UserError(f"--config {args.config}: its generator.architecture is "
                        f"{config['generator'].get('architecture')!r}; give a config with a vector generator")
    parts = config["generator"]["vector_parts"]
    found = {edge: differences({**config["generator"], "edge_px": edge}, args.size, config["latent_dim"], args.count)
             for edge in args.edge_px}
    print(f"{args.count} random scenes of {len(parts)} parts ({', '.join(parts)}) at {args.size} px, "
          f"|SVG - PNG| in [0, 1]:")
    for edge, values in found.items():
        print(f"  edge_px {edge:4.2f}: mean {values.mean():.4f}, worst scene {values.max():.4f}")

if __name__ == "__main__":
    cli.run(main)
