"""The auxiliary classifier (AC-GAN, ADC-GAN, multi-class hinge): a class head on the discriminator that the
generator must satisfy."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from infra.errors import UserError
from models import builders, losses
from models import config as configs
from models import train
from models.gan import GAN
from models.networks.discriminator import build_discriminator
from tests.models.helpers import CLASS_NAMES, make_dataset, tiny_config, write_config


def test_the_class_loss_needs_a_generator_that_takes_the_label():
    config = {"generator": {"choice": "dcgan"}, "discriminator": {"choice": "dcgan"}, "class_loss_weight": 1.0}
    with pytest.raises(UserError) as raised:
        configs.resolve(config, "c.json")
    message = str(raised.value)
    assert "class_loss_weight = 1.0" in message and "generator.choice cgan" in message and "\n" not in message
    with pytest.raises(UserError, match="class_loss_weight"):
        configs.resolve({**config, "generator": {"choice": "cgan"}, "class_loss_weight": -1}, "c.json")


def test_the_discriminator_gives_its_score_then_one_logit_per_class():
    discriminator = build_discriminator({"choice": "dcgan", "width": 4}, (16, 16, 3), None, classifier_classes=5)
    outputs = keras.ops.convert_to_numpy(discriminator([np.zeros((2, 16, 16, 3), "float32")]))
    assert outputs.shape == (2, 6)
    gan = GAN(generator=None, discriminator=discriminator, latent_dim=2, class_loss_weight=0.5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(gan.scores(outputs)), outputs[:, :1])


def test_a_class_loss_type_without_a_weight_is_refused():
    config = {"generator": {"choice": "cgan"}, "discriminator": {"choice": "cgan"}, "class_loss_type": "adc"}
    with pytest.raises(UserError) as raised:
        configs.resolve(config, "c.json")
    assert "class_loss_type = 'adc' has no effect while class_loss_weight is 0" in str(raised.value)
    with pytest.raises(UserError, match="class_loss_type"):
        configs.resolve({**config, "class_loss_weight": 0.5, "class_loss_type": "tac"}, "c.json")
    # A resolved config (as a run folder keeps it, for --resume) holds the default type with weight 0.
    resolved = configs.resolve({**config, "class_loss_type": "ac"}, "c.json")
    assert configs.resolve(resolved, "c.json")["class_loss_weight"] == 0


def test_the_adc_classifier_has_a_logit_per_class_and_origin(tmp_path):
    data = make_dataset(tmp_path / "squares.npz")
    config = configs.resolve(tiny_config(data, "cgan", "cgan", class_loss_weight=0.5, class_loss_type="adc"))
    config["image_shape"], config["class_names"] = [16, 16, 3], list(CLASS_NAMES)
    discriminator = builders.build_discriminator(config)
    outputs = discriminator([np.zeros((2, 16, 16, 3), "float32"), np.zeros((2,), "int32")])
    assert tuple(outputs.shape) == (2, 1 + 2 * len(CLASS_NAMES))


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_the_adc_losses_name_generated_class_k_as_classes_plus_k():
    rng = np.random.default_rng(0)
    real_logits, fake_logits = rng.normal(size=(2, 4, 6)).astype("float32")  # 3 classes, real then generated
    real_labels, fake_labels = np.array([0, 1, 2, 1], "int32"), np.array([2, 2, 0, 1], "int32")
    rows = np.arange(4)
    real_right = -log_softmax(real_logits)[rows, real_labels].mean()
    fake_as_real = -log_softmax(fake_logits)[rows, fake_labels].mean()
    fake_as_fake = -log_softmax(fake_logits)[rows, fake_labels + 3].mean()
    discriminator_term = losses.adc_discriminator_class_loss(real_logits, real_labels, fake_logits, fake_labels)
    generator_term = losses.adc_generator_class_loss(fake_logits, fake_labels)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(discriminator_term), real_right + fake_as_fake, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(generator_term), fake_as_real - fake_as_fake, rtol=1e-5)


def test_the_hinge_class_loss_stops_at_the_margin_and_is_the_term_of_both_networks():
    logits = np.array([[3.0, 1.5, 0.0],    # label 0 leads by 1.5: past the margin, no loss
                       [0.2, 0.5, 0.0],    # label 1 leads by 0.3: 0.7 short of the margin
                       [2.0, 0.0, -1.0]],  # label 2 trails the largest other logit by 3: 4
                      "float32")
    labels = np.array([0, 1, 2], "int32")
    expected = (0.0 + 0.7 + 4.0) / 3
    np.testing.assert_allclose(keras.ops.convert_to_numpy(losses.multiclass_hinge_loss(logits, labels)), expected,
                               rtol=1e-6)
    fake_logits, fake_labels = logits[::-1].copy(), np.array([2, 0, 1], "int32")
    discriminator_term = losses.discriminator_class_loss("hinge", logits, labels, fake_logits, fake_labels)
    generator_term = losses.generator_class_loss("hinge", fake_logits, fake_labels)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(discriminator_term), expected, rtol=1e-6)  # reals only
    fake_margins = [fake_logits[row, label] - np.delete(fake_logits[row], label).max()
                    for row, label in enumerate(fake_labels)]
    fake_expected = np.mean(np.maximum(0.0, 1.0 - np.array(fake_margins)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(generator_term), fake_expected, rtol=1e-6)


def label_colour_agreement(run_dir, per_class: int = 20) -> float:
    """Share of generated squares whose strongest colour channel is the one of the class asked for (the
    dataset's classes are red, green and blue squares on white)."""
    generator = keras.saving.load_model(run_dir / "generator.keras")
    labels = np.repeat(np.arange(len(CLASS_NAMES)), per_class).astype("int32")
    latent = np.random.default_rng(1).normal(size=(len(labels), 8)).astype("float32")
    images = keras.ops.convert_to_numpy(generator([latent, labels]))
    channel_means = images.reshape(len(labels), -1, 3).mean(axis=1)
    strongest = np.argmax(channel_means - channel_means.mean(axis=1, keepdims=True), axis=1)
    return float(np.mean(strongest == labels))


def test_the_class_loss_makes_the_generator_draw_the_class_asked_for(tmp_path):
    """The discriminator here never sees a label, so only the class loss can tie the label to the colour."""
    data = make_dataset(tmp_path / "squares.npz", count=96)
    agreement = {}
    for name, extra in {"ac": {"class_loss_weight": 1.0}, "adc": {"class_loss_weight": 1.0, "class_loss_type": "adc"},
                        "hinge": {"class_loss_weight": 3.0, "class_loss_type": "hinge"}, "none": {}}.items():
        config = tiny_config(data, "cgan", "dcgan", tensorboard=False, log_interval=20, sample_interval=1000,
                             checkpoint_interval=1000, **extra)
        for role in ("generator", "discriminator"):
            config[role]["optimizer"] = {"learning_rate": 1e-3}  # enough to learn it in 60 steps
        assert train.main(["--config", str(write_config(tmp_path / f"{name}.json", config)), "--steps", "60",
                           "--name", name, "--runs-dir", str(tmp_path), "--no-progress"]) == 0
        agreement[name] = label_colour_agreement(tmp_path / name)
    # Measured: 0.65 with AC-GAN's loss, 0.57 with ADC-GAN's, 0.73 with the hinge at weight 3 (0.37 at weight 1:
    # its gradient moves two logits by at most 1 each, and stops at the margin), 0.32 without (chance is 1/3).
    assert agreement["ac"] >= 0.55 and agreement["adc"] >= 0.5 and agreement["none"] <= 0.45, agreement
    assert agreement["hinge"] >= 0.6, agreement
