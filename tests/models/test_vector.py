"""The vector generator: a palette and parts in painter's order (boxes, closed Bézier paths, Bézier strokes),
rendered anti-aliased, the same scene written as SVG, and models.generate's vector outputs."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from infra.errors import UserError
from infra.icons import render_svg
from models import generate, train
from models.networks import vector
from models.networks.generator import build_generator
from models.networks.shapes import CENTRE_RANGE, MIN_HALF_SIZE
from models.vector_svg import scene_svg
from tests.models.helpers import make_dataset, subprocess_env, tiny_config, train_tiny_vector_run, write_config

SIZE = 56
PIXELS_PER_UNIT = SIZE / 2
PROJECT_ROOT = Path(__file__).resolve().parents[2]
WHITE, RED, BLUE = (1.0, 1.0, 1.0), (1.0, -1.0, -1.0), (-1.0, -1.0, 1.0)  # in the tanh range


def _logit(p):
    return math.log(p / (1 - p))


def _size_raw(size):
    return _logit((size - MIN_HALF_SIZE) / (1 - MIN_HALF_SIZE))


def choice(entry):
    """Choice logits that paint palette ``entry`` (None: off) outright."""
    def logits(palette):
        values = [0.0] * (palette + 1)
        values[0 if entry is None else entry + 1] = 20.0
        return values
    return logits


def box(centre=(0.0, 0.0), half=(0.5, 0.5), roundness=-20.0, thickness=20.0, entry=1):
    """A box; roundness and thickness raw (-20: sharp corners; 20: filled)."""
    return "box", entry, [math.atanh(centre[0] / CENTRE_RANGE), math.atanh(centre[1] / CENTRE_RANGE),
                          _size_raw(half[0]), _size_raw(half[1]), 1.0, 0.0, roundness, thickness]


def path(points, entry=1, size=0.5):
    """A closed path through absolute anchor and control points (3 per segment), centred on the origin."""
    base = vector.circle_points(len(points) // 3)
    offsets = ((np.asarray(points, "float32") / size) - base) / vector.OFFSET_SCALE
    return "path", entry, [0.0, 0.0, _size_raw(size), *offsets.reshape(-1)]


def stroke(points, half_width, entry=1, size=0.5, index=0):
    base = vector.line_points((len(points) - 1) // 3, vector.stroke_angle(index))
    offsets = ((np.asarray(points, "float32") / size) - base) / vector.OFFSET_SCALE
    low, high = vector.STROKE_HALF_WIDTHS
    return "stroke", entry, [0.0, 0.0, _size_raw(size), *offsets.reshape(-1), _logit((half_width - low) / (high - low))]


def straight(points):
    """Anchors of a polygon -> the anchors and control points of its straight cubic segments."""
    out = []
    for index, start in enumerate(points):
        end = np.asarray(points[(index + 1) % len(points)], "float32")
        start = np.asarray(start, "float32")
        out += [start, start + (end - start) / 3, start + 2 * (end - start) / 3]
    return out


def scene(parts, colours=(WHITE, RED, BLUE), path_segments=4, stroke_segments=1, colour_choice="hard",
          edge_px=vector.EDGE_PX, carving="beneath"):
    """A renderer and its one-image flat scene for ``parts`` in painter's order; a part's entry is a palette
    index, None (off) or its own list of choice logits."""
    layout = vector.SceneLayout(tuple(kind for kind, _, _ in parts), len(colours), 3, path_segments,
                                stroke_segments, colour_choice, carving)
    values = [value for colour in colours for value in colour]
    for _, entry, _ in parts:
        values += entry if isinstance(entry, list) else choice(entry)(len(colours))
    for kind in vector.PART_KINDS:
        values += [value for part_kind, _, raw in parts if part_kind == kind for value in raw]
    assert len(values) == layout.size
    renderer = vector.VectorRenderer(SIZE, SIZE, list(layout.parts), len(colours), 3, path_segments,
                                     stroke_segments, 16, colour_choice=colour_choice, edge_px=edge_px,
                                     carving=carving)
    return renderer, np.array([values], dtype="float32")


def render(parts, **kwargs) -> np.ndarray:
    renderer, flat = scene(parts, **kwargs)
    return ops.convert_to_numpy(renderer(flat))[0]


def red_share(image):
    return ((image[..., 0] - image[..., 2]) / 2).clip(0, 1)  # 1 where red, 0 where white or blue


def circle(radius, segments=4):
    return [point * radius for point in vector.circle_points(segments)]


def test_a_closed_path_started_as_a_circle_fills_the_circle_with_anti_aliased_edges():
    image = red_share(render([path(circle(0.5))]))
    radius_px = 0.5 * PIXELS_PER_UNIT
    assert image.sum() == pytest.approx(math.pi * radius_px**2, rel=0.01)
    partial = np.count_nonzero((image > 0.1) & (image < 0.9))
    assert image[28, 28] > 0.999 and image[2, 2] < 0.001 and partial < 2.5 * 2 * math.pi * radius_px


def test_edge_px_widens_the_anti_aliased_band_in_proportion_and_keeps_the_area():
    sharp, soft = (red_share(render([path(circle(0.5))], edge_px=edge)) for edge in (0.3, 0.6))
    assert soft.sum() == pytest.approx(sharp.sum(), rel=0.01)
    partial = [np.count_nonzero((image > 0.1) & (image < 0.9)) for image in (sharp, soft)]
    assert 1.6 < partial[1] / partial[0] < 2.4  # the 10-90% band is 4.4 x edge_px wide
    generator = build_generator({"choice": "dcgan", "architecture": "vector", "palette": 3, "edge_px": 0.6},
                                (SIZE, SIZE, 3), 8, None)
    renderer = generator.get_layer("vector_renderer")
    assert renderer.edge_px == 0.6 and renderer.at_size(112, 112).edge_px == 0.6


def test_annealed_edges_start_soft_in_training_and_reach_edge_px_while_inference_stays_at_edge_px():
    # Boxes only: the edges' softness is one scale for every kind of part, and each renderer built here compiles.
    renderer, flat = _random_scenes(count=4, seed=1, parts=["box", "box", "box"])
    at = {edge: ops.convert_to_numpy(vector.VectorRenderer.from_config({**renderer.get_config(), "edge_px": edge})(
        flat)) for edge in (1.0, 0.65, 0.3)}
    assert np.abs(at[1.0] - at[0.3]).mean() > 0.01  # the three softnesses draw differently
    annealed = vector.VectorRenderer.from_config({**renderer.get_config(), "edge_px": 0.3, "edge_px_start": 1.0,
                                                  "edge_anneal_kimg": 0.008})  # 8 images: two calls of four
    np.testing.assert_allclose(ops.convert_to_numpy(annealed(flat)), at[0.3], atol=1e-5)
    for expected, drawn in ((1.0, 4), (0.65, 8), (0.3, 8), (0.3, 8)):
        np.testing.assert_allclose(ops.convert_to_numpy(annealed(flat, training=True)), at[expected], atol=1e-5)
        assert float(ops.convert_to_numpy(annealed.images_drawn)) == drawn  # held at the anneal's end
    np.testing.assert_allclose(ops.convert_to_numpy(annealed(flat)), at[0.3], atol=1e-5)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_run_counts_the_images_its_renderer_draws_and_a_resumed_run_goes_on_from_them(tmp_path, backend):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), tensorboard=False)
    config["generator"].update(architecture="vector", palette=3, vector_parts=["box"],
                               widths=[16], edge_px_start=1.0, edge_anneal_kimg=1)
    path = write_config(tmp_path / "vector.json", config)
    script = (
        "import sys, keras\n"
        "from models import train\n"
        "import models.networks.vector\n"
        "config, runs = sys.argv[1:3]\n"
        "assert train.main(['--config', config, '--steps', '5', '--name', 'v', '--runs-dir', runs, '--no-progress']) == 0\n"
        "assert train.main(['--resume', runs + '/v', '--steps', '8', '--no-progress']) == 0\n"
        "generator = keras.saving.load_model(runs + '/v/generator.keras', compile=False)\n"
        "print('drawn', float(keras.ops.convert_to_numpy(generator.get_layer('vector_renderer').images_drawn)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path)], capture_output=True, text=True,
                            env=subprocess_env(KERAS_BACKEND=backend), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    # Eight steps of batch 8, each drawing twice (the discriminator's update and the generator's), the count
    # restored with the weights when the run resumed (a count started over would read 48).
    assert "drawn 128.0" in result.stdout
    saved = json.loads((tmp_path / "v" / "config.json").read_text())["generator"]
    assert (saved["edge_px_start"], saved["edge_anneal_kimg"]) == (1.0, 1)


def test_the_even_odd_rule_leaves_a_hole_where_a_path_winds_twice():
    # A pentagram drawn as one closed path of straight segments: its inner pentagon is crossed twice.
    star = [(0.8 * math.sin(4 * math.pi * k / 5), -0.8 * math.cos(4 * math.pi * k / 5)) for k in range(5)]
    image = red_share(render([path(straight(star), size=0.5)], path_segments=5))
    assert image[28, 28] < 0.01  # the centre is a hole
    tip_row = round((-0.6 + 1) * PIXELS_PER_UNIT - 0.5)
    assert image[tip_row, 28] > 0.9  # the top point is filled


def test_a_stroke_is_its_centre_line_widened_with_round_caps():
    line = [(-0.5 + k / 3, 0.0) for k in range(4)]
    image = red_share(render([stroke(line, 0.1)]))
    length, half = 1.0 * PIXELS_PER_UNIT, 0.1 * PIXELS_PER_UNIT
    assert image.sum() == pytest.approx(length * 2 * half + math.pi * half**2, rel=0.02)
    assert image[28, 28] > 0.99 and image[28 - 5, 28] < 0.01


def test_parts_paint_in_order_and_painting_the_background_carves():
    under, over = box(half=(0.5, 0.5), entry=1), box(half=(0.25, 0.25), entry=2)
    image = render([under, over])
    assert np.allclose(image[28, 28], BLUE, atol=1e-3) and np.allclose(image[28, 18], RED, atol=1e-3)
    reversed_order = render([over, under])
    assert np.allclose(reversed_order[28, 28], RED, atol=1e-3)  # the big box now covers the small one
    carved = render([under, box(half=(0.25, 0.25), entry=0)])
    assert np.allclose(carved[28, 28], WHITE, atol=1e-3) and np.allclose(carved[28, 18], RED, atol=1e-3)
    assert np.allclose(render([under, box(entry=None)]), render([under]), atol=1e-6)  # off draws nothing


def test_with_carving_all_a_part_painting_the_background_cuts_the_parts_painted_after_it_too():
    under, hole, over = box(half=(0.8, 0.8), entry=1), box(half=(0.15, 0.15), entry=0), box(half=(0.5, 0.5), entry=2)
    beneath = render([under, hole, over])
    assert np.allclose(beneath[28, 28], BLUE, atol=1e-3)  # painted over the hole
    cut = render([under, hole, over], carving="all")
    assert np.allclose(cut[28, 28], WHITE, atol=1e-3) and np.allclose(cut[28, 18], BLUE, atol=1e-3)
    assert np.allclose(cut[28, 8], RED, atol=1e-3)
    # Without a carving part the two rules draw alike.
    assert np.allclose(render([under, over], carving="all"), render([under, over]), atol=1e-6)
    with pytest.raises(UserError, match="carving: 'all' goes with colour_choice 'hard'"):
        build_generator({"choice": "dcgan", "architecture": "vector", "palette": 3, "carving": "all",
                         "colour_choice": "soft"}, (SIZE, SIZE, 3), 8, None)


def test_a_soft_colour_choice_paints_the_softmax_mix_of_the_palette_and_is_still_on_or_off_outright():
    mixed = [-1.0, 0.0, math.log(3.0), 0.0]  # off, white, red, blue: on, and red three times blue's and white's weight
    image = render([box(entry=mixed)], colour_choice="soft")
    expected = (np.array(WHITE) + 3 * np.array(RED) + np.array(BLUE)) / 5
    np.testing.assert_allclose(image[28, 28], expected, atol=1e-4)
    assert np.allclose(image[2, 2], WHITE, atol=1e-4)
    # The same logits chosen outright paint red; a part whose "off" leads draws nothing at all.
    np.testing.assert_allclose(render([box(entry=mixed)])[28, 28], RED, atol=1e-4)
    faint = [2.0, 0.0, 1.9, 0.0]
    assert np.allclose(render([box(entry=faint)], colour_choice="soft"), WHITE, atol=1e-6)


def test_outline_start_spread_narrows_only_the_outlines_variety_across_latent_draws():
    spreads = {}
    for spread in (1.0, 0.2):
        generator = build_generator({"choice": "dcgan", "architecture": "vector", "palette": 4,
                                     "outline_start_spread": spread}, (SIZE, SIZE, 3), 8, None)
        renderer = generator.get_layer("vector_renderer")
        flat = ops.convert_to_numpy(keras.Model(generator.inputs, renderer.input)(
            np.random.default_rng(0).normal(size=(256, 8)), training=True))
        geometry = flat[:, renderer.layout.palette * 3:].std(axis=0)
        outlines = np.zeros(len(geometry), bool)
        outlines[renderer.layout.outline_offsets()] = True
        spreads[spread] = geometry[outlines].mean(), geometry[~outlines].mean()
    # Offsets: 4 paths x 24 and 2 strokes x 14; all of them, and nothing else, narrowed by the factor.
    assert np.count_nonzero(outlines) == 4 * 24 + 2 * 14
    assert spreads[1.0][0] == pytest.approx(spreads[1.0][1], rel=0.15)
    assert spreads[0.2][0] == pytest.approx(0.2 * spreads[1.0][0], rel=0.15)
    assert spreads[0.2][1] == pytest.approx(spreads[1.0][1], rel=0.15)


def test_every_parameter_of_a_visible_part_gets_a_gradient():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient is checked on TensorFlow; test_the_same_scene_renders_the_same_on_jax checks JAX")
    renderer, flat = scene([box(half=(0.4, 0.3), roundness=1.0, thickness=-0.5), path(circle(0.4), entry=2),
                            stroke([(-0.5, 0.2), (0, 0.5), (0.2, -0.3), (0.5, 0.1)], 0.08)])
    rng = np.random.default_rng(0)
    flat = flat + rng.normal(0, 0.05, flat.shape).astype("float32") * (np.abs(flat) < 10)
    variable = tf.Variable(flat)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(renderer(variable) * tf.random.stateless_normal((1, SIZE, SIZE, 3), (1, 2)))
    gradient = tape.gradient(loss, variable).numpy()[0]
    layout = renderer.layout
    start = layout.palette * 3 + len(layout.parts) * (layout.palette + 1)
    geometry = gradient[start:]
    assert np.isfinite(gradient).all() and np.count_nonzero(np.abs(geometry) > 1e-6) == len(geometry)


def test_the_fused_renderer_matches_the_op_by_op_drawing_in_values_and_gradients():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("JAX's jitted step fuses the renderer itself; fused() returns it unchanged there")
    # Fixed weights: with unseeded ones, about one run in three drew a pixel equidistant from two edges, where
    # the two compilations' rounding picks different nearest edges (a 4e-4 difference at that one pixel).
    keras.utils.set_random_seed(0)
    generator = build_generator({"choice": "dcgan", "architecture": "vector", "palette": 4}, (24, 32, 3), 8, None)
    renderer = generator.get_layer("vector_renderer")
    scenes = keras.Model(generator.inputs, renderer.input)(np.random.default_rng(1).normal(size=(3, 8)))
    variable = tf.Variable((ops.convert_to_numpy(scenes)
                            + np.random.default_rng(2).normal(0, 0.5, scenes.shape)).astype("float32"))
    results = []
    for draw in (renderer, renderer.draw_op_by_op):
        with tf.GradientTape() as tape:
            images = draw(variable)
            loss = tf.reduce_sum(images * tf.range(32, dtype=tf.float32)[:, None])
        results.append((images.numpy(), tape.gradient(loss, variable).numpy()))
    (fused_images, fused_gradient), (plain_images, plain_gradient) = results
    assert fused_images.shape == (3, 24, 32, 3) and np.abs(plain_gradient).max() > 1e-3
    np.testing.assert_allclose(fused_images, plain_images, atol=1e-4)
    np.testing.assert_allclose(fused_gradient, plain_gradient, rtol=1e-3, atol=1e-3 * np.abs(plain_gradient).max())


def test_outlines_of_many_edges_loop_over_them_and_draw_as_the_unrolled_search(monkeypatch):
    """Paths of 48 edges (4 segments x 12 samples) take the compiled loop; raising the limit unrolls it."""
    parts = ["box", "path", "stroke", "path"]
    renderer = vector.VectorRenderer(SIZE, SIZE, parts, 3, 3, 4, 2, 12, outline_scale=2)
    assert 4 * 12 > vector.UNROLLED_EDGES
    rng = np.random.default_rng(3)
    flat = rng.normal(0, 1.0, (4, renderer.layout.size)).astype("float32")
    flat[:, :9] = rng.uniform(-1, 1, (4, 9))

    def draw_with_gradient(renderer):
        scene = ops.convert_to_tensor(flat)
        if keras.backend.backend() != "tensorflow":
            import jax
            value, gradient = jax.value_and_grad(lambda s: ops.sum(renderer.draw_op_by_op(s) * ramp))(scene)
            return renderer.draw_op_by_op(scene), gradient
        import tensorflow as tf
        with tf.GradientTape() as tape:
            tape.watch(scene)
            images = renderer.draw_op_by_op(scene)
            loss = tf.reduce_sum(images * ramp)
        return images, tape.gradient(loss, scene)

    ramp = np.linspace(-1, 1, SIZE, dtype="float32")[:, None]
    looped_images, looped_gradient = (ops.convert_to_numpy(value) for value in draw_with_gradient(renderer))
    monkeypatch.setattr(vector, "UNROLLED_EDGES", 1000)
    unrolled = vector.VectorRenderer.from_config(renderer.get_config())
    images, gradient = (ops.convert_to_numpy(value) for value in draw_with_gradient(unrolled))
    assert images.std() > 0.1 and np.abs(gradient).max() > 1e-3
    np.testing.assert_allclose(looped_images, images, atol=1e-5)
    np.testing.assert_allclose(looped_gradient, gradient, atol=1e-5 * np.abs(gradient).max())


def _random_scenes(count=6, seed=0, colour_choice="hard", carving="beneath", parts=None):
    generator = build_generator({"choice": "dcgan", "architecture": "vector", "palette": 4, "vector_parts": parts,
                                 "colour_choice": colour_choice, "carving": carving}, (SIZE, SIZE, 3), 8, None)
    renderer = generator.get_layer("vector_renderer")
    flat = ops.convert_to_numpy(keras.Model(generator.inputs, renderer.input)(
        np.random.default_rng(seed).normal(size=(count, 8))))
    noise = np.random.default_rng(seed + 1).normal(0, 1.0, flat.shape).astype("float32")
    noise[:, :renderer.layout.palette * 3] = 0  # colours stay in range; the geometry varies widely
    # One part of each scene, never the last, paints the background: the carving rules differ only there.
    layout = renderer.layout
    for index in range(count):
        part = index % (len(layout.parts) - 1)
        noise[index, layout.palette * 3 + part * (layout.palette + 1) + 1] += 20.0
    return renderer, flat + noise


def _numpy(value):
    return {key: _numpy(item) for key, item in value.items()} if isinstance(value, dict) else \
        ops.convert_to_numpy(value)


@pytest.mark.parametrize("colour_choice, carving", [("hard", "beneath"), ("soft", "beneath"), ("hard", "all")])
def test_each_svg_renders_as_the_generator_draws_it_at_the_trained_size_and_four_times_larger(colour_choice, carving):
    renderer, flat = _random_scenes(colour_choice=colour_choice, carving=carving)
    images = (ops.convert_to_numpy(renderer(flat)) + 1) / 2
    decoded = _numpy(vector.decode(flat, renderer.layout))
    carving_parts = np.argmax(decoded["choices"], axis=-1) == 1
    assert carving_parts[:, :-1].any()  # some part paints the background before the last place
    large = (ops.convert_to_numpy(renderer.at_size(4 * SIZE, 4 * SIZE)(flat)) + 1) / 2
    for index in range(len(flat)):
        svg = scene_svg(decoded, index, renderer.layout, renderer.value_range, SIZE, SIZE)
        assert svg.startswith("<svg") and svg.count("<path") >= 1
        drawn = np.asarray(render_svg(svg, SIZE), "float32") / 255
        assert np.abs(drawn - images[index]).mean() <= 0.02
        shrunk = large[index].reshape(SIZE, 4, SIZE, 4, 3).mean(axis=(1, 3))
        assert np.abs(shrunk - images[index]).mean() <= 0.03
        drawn_large = np.asarray(render_svg(svg, 4 * SIZE), "float32") / 255
        assert np.abs(drawn_large.reshape(SIZE, 4, SIZE, 4, 3).mean(axis=(1, 3)) - images[index]).mean() <= 0.03


def test_the_same_scene_renders_the_same_on_jax(tmp_path):
    renderer, flat = _random_scenes(count=3, seed=5)
    # The second renderer also mixes its parts' colours (colour_choice soft): both readings of the choices.
    coarse = vector.VectorRenderer.from_config({**renderer.get_config(), "outline_scale": 2, "colour_choice": "soft"})
    np.save(tmp_path / "scenes.npy", flat)
    script = (
        "import json, sys, numpy as np, keras\n"
        "from models.networks.vector import VectorRenderer\n"
        "scenes = np.load(sys.argv[3])\n"
        "np.save(sys.argv[4], np.stack([keras.ops.convert_to_numpy(VectorRenderer.from_config(json.loads(config))"
        "(scenes)) for config in sys.argv[1:3]]))\n"
    )
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    result = subprocess.run([sys.executable, "-c", script, json.dumps(renderer.get_config()),
                             json.dumps(coarse.get_config()), str(tmp_path / "scenes.npy"),
                             str(tmp_path / "images.npy")],
                            env=subprocess_env(KERAS_BACKEND=other), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    here = np.stack([ops.convert_to_numpy(renderer(flat)), ops.convert_to_numpy(coarse(flat))])
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), here, atol=2e-4)


def test_interpolation_from_the_coarse_grid_reproduces_linear_values_at_every_pixel():
    for count, scale in ((56, 2), (56, 4), (24, 2), (7, 4)):
        fine = vector.pixel_centres(count, 2.0 / count)
        coarse = vector.coarse_centres(fine, scale * 2.0 / count)
        assert coarse[0] <= fine[0] and coarse[-1] >= fine[-1] and len(coarse) <= count // scale + 2
        matrix = vector.interpolation_matrix(coarse, fine)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(matrix @ (3.0 * coarse - 0.5), 3.0 * fine - 0.5, atol=1e-5)


def test_outlines_measured_on_a_coarser_grid_draw_the_same_scenes_and_svgs_within_a_pixel_error():
    # palette_scale 2 measures the paths' and strokes' distances on a 29x29 grid for 56 px: the renderer's main
    # cost falls by about 4x, and the images stay within the SVG tolerance of the exact rendering.
    renderer, flat = _random_scenes(count=4, seed=3)
    coarse_generator = build_generator({"choice": "dcgan", "architecture": "vector", "palette": 4,
                                        "palette_scale": 2}, (SIZE, SIZE, 3), 8, None)
    coarse = coarse_generator.get_layer("vector_renderer")
    assert coarse.outline_scale == 2
    exact, images = ((ops.convert_to_numpy(draw(flat)) + 1) / 2 for draw in (renderer, coarse))
    error = np.abs(images - exact).mean(axis=(1, 2, 3))
    assert 0 < error.max() <= 0.008
    decoded = _numpy(vector.decode(flat, coarse.layout))
    for index in range(len(flat)):
        svg = scene_svg(decoded, index, coarse.layout, coarse.value_range, SIZE, SIZE)
        assert np.abs(np.asarray(render_svg(svg, SIZE), "float32") / 255 - images[index]).mean() <= 0.02
    # A straight edge's signed distance is linear, so a square path comes out as the exact renderer draws it
    # but within a few pixels of its corners, where the nearest edge changes.
    square = [path(straight([(-0.4, -0.4), (0.4, -0.4), (0.4, 0.4), (-0.4, 0.4)]))]
    exact_renderer, flat_square = scene(square)
    coarse_renderer = vector.VectorRenderer.from_config({**exact_renderer.get_config(), "outline_scale": 2})
    difference = np.abs(ops.convert_to_numpy(coarse_renderer(flat_square))
                        - ops.convert_to_numpy(exact_renderer(flat_square)))[0].max(axis=-1)
    x, y = np.meshgrid(*(2 * [vector.pixel_centres(SIZE, 2.0 / SIZE)]))
    near_corner = (np.abs(np.abs(x) - 0.4) < 3 / PIXELS_PER_UNIT) & (np.abs(np.abs(y) - 0.4) < 3 / PIXELS_PER_UNIT)
    assert difference[~near_corner].max() < 1e-3 and difference[near_corner].max() > 0.01


@pytest.mark.parametrize("role, options, message", [
    ("discriminator", {"choice": "dcgan", "architecture": "vector"}, "discriminator.architecture: 'vector' draws"),
    ("generator", {"choice": "dcgan", "architecture": "vector"}, "generator.palette: null with architecture 'vector'"),
    ("generator", {"choice": "dcgan", "architecture": "vector", "palette": 3, "vector_parts": ["box", "star"]},
     "generator.vector_parts.1: 'star' is not one of"),
    ("generator", {"choice": "dcgan", "architecture": "vector", "palette": 3, "vector_parts": []},
     "generator.vector_parts: [] should be non-empty"),
    ("generator", {"choice": "dcgan", "architecture": "vector", "palette": 3, "vector_parts": ["box", "path"],
                   "part_latent_dim": 5}, "generator.part_latent_dim: 5 for each of 2 parts needs a latent_dim of at "
     "least 10, not 8"),
])
def test_bad_vector_options_are_one_line_errors(role, options, message):
    from models.networks.discriminator import build_discriminator

    with pytest.raises(UserError) as error:
        if role == "generator":
            build_generator(options, (56, 56, 3), 8, None)
        else:
            build_discriminator(options, (56, 56, 3), None)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_part_latents_pass_each_parts_own_slice_through_heads_shared_by_its_kind(tmp_path):
    LATENT = 24  # not the heads' width (16), so the layers that read the latent are told apart by their kernels
    def build(parts, part_latent_dim):
        options = {"choice": "dcgan", "architecture": "vector", "palette": 3, "vector_parts": parts,
                   "widths": [32], "part_latent_dim": part_latent_dim}
        return build_generator(options, (16, 16, 3), LATENT, None)

    def added_weights(parts):
        return build(parts, 2).count_params() - build(parts, 0).count_params()
    # One head per kind whatever the number of parts of that kind: four boxes cost what two do.
    assert added_weights(["box", "box"]) == added_weights(["box"] * 4) > 0
    assert added_weights(["box", "path"]) > added_weights(["box", "box"])  # a second kind, a second head

    generator = build(["box", "box", "box"], 4)
    for layer in generator.layers:  # the shared context held: every dense layer reading the latent made blind to it
        if isinstance(layer, keras.layers.Dense) and layer.kernel.shape[0] == LATENT:
            layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
    noise = np.random.default_rng(0).normal(size=(3, LATENT)).astype("float32")
    scene = keras.Model(generator.inputs, generator.get_layer("vector_scene").output)
    moved = noise.copy()
    moved[:, 4:8] += 1.0  # the second box's own slice of the latent
    change = np.abs(scene(moved).numpy() - scene(noise).numpy())
    choices, boxes = change[:, 9:21].reshape(3, 3, 4), change[:, 21:].reshape(3, 3, 8)  # after the colours
    assert boxes[:, 1].min() > 0 and choices[:, 1].min() > 0  # its shape and its colour choice move
    assert boxes[:, [0, 2]].max() == 0 and choices[:, [0, 2]].max() == 0  # the other boxes' do not
    tail = noise.copy()
    tail[:, 12:] += 1.0  # the latent's last values belong to no part: they reach the scene only through the context
    np.testing.assert_array_equal(scene(tail).numpy(), scene(noise).numpy())
    generator.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras")
    np.testing.assert_allclose(loaded(noise).numpy(), generator(noise).numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory):
    return train_tiny_vector_run(tmp_path_factory.mktemp("vector_run"))


def test_a_vector_run_writes_svgs_that_match_its_pngs(vector_run, tmp_path):
    assert generate.main(["--run", str(vector_run), "--n", "4", "--seed", "5", "--format", "svg",
                          "--out", str(tmp_path / "svg")]) == 0
    assert generate.main(["--run", str(vector_run), "--n", "4", "--seed", "5", "--out", str(tmp_path / "png")]) == 0
    names = sorted(path.name for path in (tmp_path / "svg").iterdir())
    assert names == [f"sample_{index:04d}.svg" for index in range(4)]
    from PIL import Image

    for index in range(4):
        svg = (tmp_path / "svg" / f"sample_{index:04d}.svg").read_text()
        png = np.asarray(Image.open(tmp_path / "png" / f"sample_{index:04d}.png"), "float32") / 255
        assert np.abs(np.asarray(render_svg(svg, 16), "float32") / 255 - png).mean() <= 0.02


def test_size_colours_seeds_and_truncation(vector_run, tmp_path):
    loaded = generate.load_generator(vector_run)
    big = loaded.sample(2, seed=1, size=64)
    small = loaded.sample(2, seed=1)
    assert big.shape == (2, 64, 64, 3) and small.shape == (2, 16, 16, 3)
    shrunk = big.astype("float32").reshape(2, 16, 4, 16, 4, 3).mean(axis=(2, 4))
    assert np.abs(shrunk - small).mean() / 255 <= 0.03
    painted = loaded.sample(2, seed=1, colours="#ff0000,#00ff00,#0000ff")
    allowed = {(255, 0, 0), (0, 255, 0), (0, 0, 255)}
    flat_pixels = {tuple(pixel) for pixel in painted.reshape(-1, 3)}
    assert len(flat_pixels & allowed) >= 1 and painted[:, 0, 0].tolist() == [[255, 0, 0]] * 2  # background first
    # CSS's short hex and names are the same colours
    np.testing.assert_array_equal(loaded.sample(2, seed=1, colours="#f00, lime ,Blue"), painted)
    assert generate.main(["--run", str(vector_run), "--seeds", "3-5,9", "--truncation", "0.5",
                          "--out", str(tmp_path / "seeds")]) == 0
    assert sorted(path.name for path in (tmp_path / "seeds").iterdir()) == [
        "seed0003.png", "seed0004.png", "seed0005.png", "seed0009.png"]
    alone = loaded.generate(loaded.seed_latents([4]), truncation=0.5)[0]
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "seeds" / "seed0004.png")), alone)
    assert np.array_equal(loaded.generate(loaded.seed_latents([4]), truncation=0.0),
                          loaded.generate(loaded.seed_latents([7]), truncation=0.0))  # psi 0: the average sample


def test_bad_vector_flags_are_one_line_errors(vector_run, tmp_path):
    def error(*flags):
        with pytest.raises(UserError) as caught:
            generate.main(["--run", str(vector_run), *flags])
        return str(caught.value)
    assert error("--seeds", "5-2", "--out", str(tmp_path / "a")).startswith("--seeds '5-2': expected seeds")
    assert error("--truncation", "1.5", "--out", str(tmp_path / "a")).startswith("--truncation 1.5: allowed 0")
    assert error("--colours", "#ff0000", "--out", str(tmp_path / "a")).startswith("--colours: 1 colour(s)")
    assert error("--colours", "blurple,#00ff00", "--out", str(tmp_path / "a")).startswith(
        "--colours: 'blurple' is not")
    # A stray comma is not read as the mark's two colours with the background kept.
    assert error("--colours", "#ff0000,,#0000ff", "--out", str(tmp_path / "a")).startswith(
        "--colours: entry 2 of 3 is empty")
    assert error("--format", "svg", "--out", str(tmp_path / "a.png")).startswith("--format svg writes one SVG")
    assert error("--size", "0", "--out", str(tmp_path / "a")).startswith("--size 0: allowed 1 to")


def test_a_pixel_generator_refuses_svg_size_and_colours_in_one_line(tmp_path):
    config = tiny_config(make_dataset(tmp_path / "squares.npz"), tensorboard=False)
    path = write_config(tmp_path / "c.json", config)
    assert train.main(["--config", str(path), "--steps", "2", "--name", "p", "--runs-dir", str(tmp_path),
                       "--no-progress"]) == 0
    for flags in (["--format", "svg"], ["--size", "64"], ["--colours", "#ff0000,#00ff00"]):
        result = subprocess.run([sys.executable, "-m", "models.generate", "--run", str(tmp_path / "p"), *flags,
                                 "--out", str(tmp_path / "out")], cwd=PROJECT_ROOT, env=subprocess_env(),
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"{flags[0]}" in result.stderr.strip().splitlines()[-1] and "vector generator" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert os.path.isdir(tmp_path / "p")
