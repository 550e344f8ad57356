import numpy as np
import pytest

from evaluation import classifier
from evaluation.classifier import ClassJudge
from evaluation.evaluator import Evaluator
from evaluation.features import InceptionEmbedder
from infra.errors import UserError


def test_real_statistics_come_from_the_cache_the_second_time(reference, fid_assets, eval_cache, evaluator_a,
                                                             monkeypatch):
    def no_embedding(*_args, **_kwargs):
        raise AssertionError("the real images were embedded again")

    monkeypatch.setattr(InceptionEmbedder, "embed", no_embedding)
    again = Evaluator(reference["fmnist_a"][..., None], ["fid"], cache_dir=eval_cache,
                      inception_weights=fid_assets["weights"], progress=False)
    np.testing.assert_array_equal(again.real_features, evaluator_a.real_features)
    assert len(list(eval_cache.glob("inception-*.npz"))) == 1
    changed = reference["fmnist_a"].copy()
    changed[0, 0, 0] ^= 1
    with pytest.raises(AssertionError, match="embedded again"):
        Evaluator(changed, ["fid"], cache_dir=eval_cache, inception_weights=fid_assets["weights"], progress=False)


def test_pixel_metrics_need_no_inception_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGOGAN_INCEPTION_WEIGHTS", str(tmp_path / "missing.pt"))
    images = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    evaluator = Evaluator(images, ["mmd"], cache_dir=tmp_path, progress=False)
    assert set(evaluator.evaluate(images[::-1])) == {"mmd"}
    with pytest.raises(UserError, match="missing.pt"):
        Evaluator(images, ["kid"], cache_dir=tmp_path, progress=False)


def striped_classes(count: int, seed: int):
    """Three visibly different 8×8 patterns with noise: bright top, bright left, bright centre."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    images = rng.integers(0, 60, (count, 8, 8, 1)).astype(np.uint8)
    images[labels == 0, :4] += 180
    images[labels == 1, :, :4] += 180
    images[labels == 2, 2:6, 2:6] += 180
    return images, labels


def test_class_accuracy_rewards_the_requested_class(tmp_path, monkeypatch):
    real, real_labels = striped_classes(240, seed=0)
    evaluator = Evaluator(real, ["class_accuracy"], real_labels=real_labels, class_names=["top", "left", "centre"],
                          cache_dir=tmp_path, progress=False)
    assert evaluator.class_judge.real_accuracy > 0.9
    fake, fake_labels = striped_classes(60, seed=1)
    assert evaluator.evaluate(fake, fake_labels)["class_accuracy"] > 0.9
    assert evaluator.evaluate(fake, (fake_labels + 1) % 3)["class_accuracy"] < 0.1
    with pytest.raises(UserError, match="asked for"):
        evaluator.evaluate(fake)

    monkeypatch.setattr(classifier, "_train", lambda *args: pytest.fail("the cached classifier was retrained"))
    cached = ClassJudge(real, real_labels, 3, tmp_path, progress=False)
    assert cached.score(fake, fake_labels) == evaluator.evaluate(fake, fake_labels)["class_accuracy"]


def test_class_accuracy_needs_labels(tmp_path):
    with pytest.raises(UserError, match="labelled real data"):
        Evaluator(np.zeros((4, 8, 8, 1), np.uint8), ["class_accuracy"], cache_dir=tmp_path, progress=False)


def test_bad_images_are_one_user_error(tmp_path):
    with pytest.raises(UserError, match="expected uint8"):
        Evaluator(np.zeros((4, 8, 8, 2), np.float32), ["mmd"], cache_dir=tmp_path, progress=False)
