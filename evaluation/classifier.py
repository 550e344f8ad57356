"""A small CNN trained on the real labelled images, to judge whether conditional samples show their class.

``class_accuracy`` is the share of generated images the classifier assigns to the class they were asked
for. It is only as good as the classifier, so its accuracy on held-out real images is kept beside it: a
generator cannot be expected to score above that ceiling.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers
from tqdm import tqdm

from evaluation.cache import cached_arrays, content_hash

FLOAT = "float32"  # independent of any mixed-precision policy the trainer set
EPOCHS = 15  # 5 left the judge at 0.76 held-out accuracy on the shared Fashion-MNIST images
BATCH_SIZE = 64
HELD_OUT = 0.1
SEED = 0


def build_classifier(image_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    def init(offset):
        return keras.initializers.GlorotUniform(seed=SEED + offset)

    inputs = keras.Input(image_shape, dtype=FLOAT)
    x = layers.Rescaling(1.0 / 255.0, dtype=FLOAT)(inputs)
    for index, width in enumerate((32, 64)):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init(index), dtype=FLOAT)(x)
        x = layers.MaxPooling2D(2, padding="same", dtype=FLOAT)(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", kernel_initializer=init(2), dtype=FLOAT)(x)
    x = layers.GlobalAveragePooling2D(dtype=FLOAT)(x)
    logits = layers.Dense(num_classes, kernel_initializer=init(3), dtype=FLOAT)(x)
    return keras.Model(inputs, logits, name="class_judge")


def _train(images: np.ndarray, labels: np.ndarray, num_classes: int, progress: bool) -> dict[str, np.ndarray]:
    """Fit on a shuffled 90 % and measure accuracy on the other 10 %; returns weights and that accuracy."""
    order = np.random.default_rng(SEED).permutation(len(images))
    held_out = max(1, int(len(images) * HELD_OUT)) if len(images) >= 10 else 0
    train, test = order[held_out:], order[:held_out]
    model = build_classifier(images.shape[1:], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = images.astype(np.float32), labels.astype(np.int64)
    for _ in tqdm(range(EPOCHS), desc="class judge", unit="epoch", disable=not progress, leave=False):
        model.fit(x[train], y[train], batch_size=BATCH_SIZE, epochs=1, shuffle=True, verbose=0)
    real_accuracy = accuracy(model, x[test], y[test]) if held_out else float("nan")
    arrays = {f"weight_{index}": weight for index, weight in enumerate(model.get_weights())}
    arrays["real_accuracy"] = np.array(real_accuracy)
    return arrays


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    logits = model.predict(images.astype(np.float32), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == labels))


class ClassJudge:
    """The trained classifier for one labelled dataset, trained once and cached by the data's hash."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int, cache_dir: Path,
                 progress: bool = True):
        key = content_hash(images, labels, extra=f"classes={num_classes};epochs={EPOCHS};v1")
        arrays = cached_arrays(Path(cache_dir) / f"classifier-{key}.npz",
                               lambda: _train(images, labels, num_classes, progress))
        self.model = build_classifier(images.shape[1:], num_classes)
        self.model.set_weights([arrays[f"weight_{index}"] for index in range(len(self.model.weights))])
        self.real_accuracy = float(arrays["real_accuracy"])
        self.image_shape = tuple(images.shape[1:])

    def score(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Share of ``images`` classified as the class in ``labels``."""
        return accuracy(self.model, images, np.asarray(labels))
