"""data_clusters: unlabelled images sorted into k-means clusters that a conditional GAN trains on as classes (LLD),
and samples asked for without a class drawn in the clusters' proportions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from infra.errors import UserError
from models import config as configs
from models.labels import default_labels
from preprocessing.clusters import cluster_images, cluster_names
from preprocessing.dataset import save_dataset
from tests.models.helpers import run_module, tiny_config, write_config

# Three kinds of image in unequal numbers: a red tile, a blue disc-ish block on white, a thin black bar on white.
GROUP_SIZES = (24, 16, 8)


def three_kinds(size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images, kind): GROUP_SIZES images of each kind, shuffled, each placed a little differently."""
    rng = np.random.default_rng(seed)
    images, kinds = [], []
    for kind, count in enumerate(GROUP_SIZES):
        for _ in range(count):
            image = np.full((size, size, 3), 255, np.uint8)
            shift = int(rng.integers(0, 2))
            if kind == 0:
                image[:] = (200, 30, 40)
                image[4 + shift:8 + shift, 4:12] = 255
            elif kind == 1:
                image[3 + shift:13 - shift, 3:13] = (30, 60, 210)
            else:
                image[6 + shift:9 + shift, 2:14] = 0
            images.append(image)
            kinds.append(kind)
    order = rng.permutation(len(images))
    return np.stack(images)[order], np.array(kinds)[order]


def test_clusters_find_the_kinds_and_are_numbered_from_the_largest():
    images, kinds = three_kinds()
    labels, count = cluster_images(images, 3)
    assert count == 3
    # Every kind is one cluster, and cluster 0 is the most common kind (24 red tiles), 2 the rarest (8 bars).
    assert np.array_equal(labels, kinds)
    again, _ = cluster_images(images, 3)
    assert np.array_equal(again, labels)  # the same images give the same clusters (a resumed run relies on it)
    assert cluster_names(3) == ["cluster 1", "cluster 2", "cluster 3"]


def test_more_clusters_than_kinds_drops_the_empty_ones_and_never_exceeds_the_images():
    images, _ = three_kinds()
    labels, count = cluster_images(images[:5], 8)
    assert count <= 5
    assert set(labels.tolist()) == set(range(count))


def test_default_labels_take_turns_or_follow_the_shares():
    assert default_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    shares = [0.6, 0.3, 0.1]
    counts = np.bincount(default_labels(1000, 3, shares), minlength=3)
    assert np.abs(counts - np.array(shares) * 1000).max() <= 2
    # Interleaved: any first 20 already hold every class about 20 x its share.
    first = np.bincount(default_labels(20, 3, shares), minlength=3)
    assert np.abs(first - np.array(shares) * 20).max() <= 1.5


def test_data_clusters_needs_a_conditional_generator():
    with pytest.raises(UserError, match="data_clusters = 4 .* set generator.conditional true"):
        configs.resolve(tiny_config(Path("d.npz"), data_clusters=4))
    with pytest.raises(UserError, match="data_clusters"):
        configs.resolve(tiny_config(Path("d.npz"), data_clusters=1))


def test_a_run_trains_on_the_clusters_and_samples_them_in_the_datas_proportions(tmp_path):
    images, kinds = three_kinds()
    data = save_dataset(tmp_path / "kinds.npz", images)  # no labels
    config = tiny_config(data, data_clusters=3, steps=2, sample_rows=3)
    for role in ("generator", "discriminator"):
        config[role]["conditional"] = True
    result = run_module("models.train", "--config", str(write_config(tmp_path / "c.json", config)),
                        "--runs-dir", str(tmp_path / "runs"), "--name", "k", "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data_clusters = 3: 48 images in 3 clusters of 8-24 images" in result.stderr
    run = tmp_path / "runs" / "k"
    saved = json.loads((run / "config.json").read_text())
    assert saved["class_names"] == ["cluster 1", "cluster 2", "cluster 3"]
    assert saved["class_shares"] == pytest.approx([24 / 48, 16 / 48, 8 / 48], abs=1e-6)

    from models.evaluate import run_real_images, sample_run

    fake, fake_labels, _ = sample_run(run, "last", 48, seed=0)
    assert fake.shape == (48, 16, 16, 3)
    assert np.abs(np.bincount(fake_labels, minlength=3) - np.array(GROUP_SIZES)).max() <= 1
    real, real_labels, names = run_real_images(saved)
    assert names == saved["class_names"] and np.array_equal(real_labels, kinds)
    # A class can still be asked for by its name.
    from models.generate import load_generator

    generator = load_generator(run)
    assert generator.class_index("Cluster 3") == 2
    assert generator.sample(4, seed=1, class_index="cluster 3").shape == (4, 16, 16, 3)


def test_data_with_labels_of_its_own_keeps_them(tmp_path):
    images, kinds = three_kinds()
    data = save_dataset(tmp_path / "labelled.npz", images, kinds, ["tile", "block", "bar"])
    from models.data import load_training_data, with_clusters

    dataset = with_clusters(load_training_data(str(data)), 5)
    assert dataset.class_names == ["tile", "block", "bar"] and np.array_equal(dataset.y, kinds)
    assert "clusters" not in dataset.meta


def test_the_generator_trains_on_the_clusters_in_their_shares():
    from models.backends.tensorflow_step import TensorFlowRandom
    from models.step_inputs import StepInputs

    config = {"batch_size": 4000, "n_critic": 1, "latent_dim": 2, "seed": 0, "augment": {"policy": []},
              "ema_kimg": None, "ema_rampup": None, "class_shares": [0.6, 0.3, 0.1]}
    inputs = StepInputs(config, 3, "tanh")
    images, labels = np.zeros((1, 4000, 2, 2, 1), np.uint8), np.zeros((1, 4000), np.int32)
    batch = inputs.batch(TensorFlowRandom, 0, images, labels)
    for name in ("fake_labels", "critic_fake_labels"):
        counts = np.bincount(np.asarray(batch[name]).reshape(-1), minlength=3)
        assert np.abs(counts / 4000 - [0.6, 0.3, 0.1]).max() < 0.03, (name, counts)
    # Without shares (classes of equal standing) they are drawn uniformly, as before.
    uniform = StepInputs({**config, "class_shares": None}, 3, "tanh").batch(TensorFlowRandom, 0, images, labels)
    assert np.abs(np.bincount(np.asarray(uniform["fake_labels"]), minlength=3) / 4000 - 1 / 3).max() < 0.03
