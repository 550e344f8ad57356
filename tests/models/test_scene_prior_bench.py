"""bench/scene_prior.py and the fit it shares with bench/vector_fit.py: fitted scenes hold a fixed background as
the generator holds it, and a warm-started generator lands in the run's checkpoint, nothing else changed."""
from __future__ import annotations

import json

import numpy as np

from models.checkpoints import Checkpoints
from models.networks.generator import build_generator
from tests.models.helpers import PROJECT_ROOT, load_script, train_tiny_vector_run


def test_fitted_scenes_hold_palette_entry_0_at_the_background_and_come_closer_to_their_targets(tmp_path):
    fit = load_script(PROJECT_ROOT / "bench" / "vector_fit.py", "vector_fit_bench")
    options = {"choice": "dcgan", "architecture": "vector", "palette": 3, "vector_parts": ["box", "path"], "widths": [16]}
    renderer = build_generator(options, (16, 16, 3), 8, None).get_layer("vector_renderer")
    targets = -np.ones((4, 16, 16, 3), "float32")  # black squares on a red canvas
    targets[:, :, :, 0] = 1.0
    targets[:, 4:12, 4:12] = -1.0

    def error(scenes):
        return float(np.abs(renderer(scenes).numpy() - targets).mean())

    first = fit.fit_scenes(renderer, targets, 1, seed=0, background="#ff0000")
    fitted = fit.fit_scenes(renderer, targets, 60, seed=0, background="#ff0000")
    np.testing.assert_allclose(fitted[:, :3], np.tile([0.999, -0.999, -0.999], (4, 1)), atol=1e-4)
    assert error(fitted) < 0.5 * error(first)
    free = fit.fit_scenes(renderer, targets, 1, seed=0)  # without a background entry 0 is fitted like the rest
    assert np.abs(free[:, :3] - first[:, :3]).max() > 0.01


def test_the_warm_generator_replaces_the_generator_and_its_ema_in_the_last_checkpoint_and_nothing_else(tmp_path):
    bench = load_script(PROJECT_ROOT / "bench" / "scene_prior.py", "scene_prior_bench")
    run = train_tiny_vector_run(tmp_path, steps=4, ema_kimg=1)
    config = json.loads((run / "config.json").read_text())
    checkpoints = Checkpoints(run)
    before = dict(np.load(checkpoints.path() / "variables.npz"))
    step = checkpoints.read_info(checkpoints.path())["step"]
    generator = build_generator(config["generator"], tuple(config["image_shape"]), config["latent_dim"], None)
    for variable in generator.variables:
        variable.assign(np.full(variable.shape, 0.25, "float32"))

    bench.write_into_run(checkpoints, generator)

    after = dict(np.load(checkpoints.path() / "variables.npz"))
    assert sorted(after) == sorted(before)
    replaced = [name for name in after if name.split("/")[0] in ("generator", "generator_ema")]
    assert len(replaced) == 2 * len(generator.variables)
    assert all(np.all(after[name] == 0.25) for name in replaced)
    assert all(np.array_equal(after[name], before[name]) for name in after if name not in replaced)
    assert checkpoints.read_info(checkpoints.path())["step"] == step
