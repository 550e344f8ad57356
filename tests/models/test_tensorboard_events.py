"""TensorBoard event files without TensorFlow: what they hold, read back by TensorBoard, and what a JAX run imports."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from models.outputs import RunOutputs
from models.tensorboard_events import EventWriter
from tests.models.helpers import PROJECT_ROOT, make_dataset, subprocess_env, tiny_config, write_config


def read_events(folder) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_scalars_and_images_read_back_exactly(tmp_path):
    writer = EventWriter(tmp_path)
    writer.scalars(2, {"d_loss": 0.25, "g_loss": 1.5})
    writer.scalars(4, {"d_loss": -3.0, "g_loss": 2})
    grid = np.random.default_rng(0).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    writer.image("samples", 3, grid)
    writer.image("gray", 5, grid[..., :1])
    writer.close()

    events = read_events(tmp_path)
    assert sorted(events.Tags()["scalars"]) == ["d_loss", "g_loss"]
    assert [(event.step, event.value) for event in events.Scalars("d_loss")] == [(2, 0.25), (4, -3.0)]
    assert [(event.step, event.value) for event in events.Scalars("g_loss")] == [(2, 1.5), (4, 2.0)]
    (image,) = events.Images("samples")
    assert (image.step, image.height, image.width) == (3, 10, 14)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image.encoded_image_string))), grid)
    (gray,) = events.Images("gray")
    assert (gray.step, gray.height, gray.width) == (5, 10, 14)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(gray.encoded_image_string))), grid[..., 0])


def test_two_writers_in_one_second_keep_separate_files(tmp_path):
    first, second = EventWriter(tmp_path), EventWriter(tmp_path)
    first.close()
    second.close()
    assert first.path != second.path and first.path.name.startswith("events.out.tfevents.")


def test_an_image_that_is_not_uint8_is_refused(tmp_path):
    writer = EventWriter(tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        writer.image("samples", 1, np.zeros((4, 4, 3), dtype=np.float32))
    writer.close()


def test_run_outputs_flush_each_record_and_grid_to_tensorboard(tmp_path):
    outputs = RunOutputs(tmp_path)
    outputs.log({"step": 2, "d_loss": 0.5, "g_loss": 0.75, "images_per_sec": 100.0})
    grid = np.full((6, 8, 3), 200, dtype=np.uint8)
    outputs.save_samples(3, grid)
    # Read before close: each write is flushed, so TensorBoard sees it while the run goes on.
    events = read_events(tmp_path / "tensorboard")
    assert sorted(events.Tags()["scalars"]) == ["d_loss", "g_loss", "images_per_sec"]
    assert [(event.step, event.value) for event in events.Scalars("g_loss")] == [(2, 0.75)]
    assert [(image.step, image.height, image.width) for image in events.Images("samples")] == [(3, 6, 8)]
    outputs.close()


def test_run_outputs_without_tensorboard_write_no_events(tmp_path):
    outputs = RunOutputs(tmp_path, tensorboard=False)
    outputs.log({"step": 1, "d_loss": 0.5})
    outputs.save_samples(1, np.zeros((4, 4, 3), dtype=np.uint8))
    outputs.close()
    assert not (tmp_path / "tensorboard").exists()


TENSORFLOW_MODULES = "sorted(name for name in sys.modules if name.split('.')[0] == 'tensorflow')"


def test_run_outputs_on_jax_never_import_tensorflow(tmp_path):
    script = f"""
import sys
import numpy as np
import keras
from models.outputs import RunOutputs
outputs = RunOutputs(sys.argv[1])
outputs.log({{"step": 1, "d_loss": 0.5}})
outputs.save_samples(1, np.zeros((4, 4, 3), dtype=np.uint8))
outputs.close()
print(keras.backend.backend(), {TENSORFLOW_MODULES})
"""
    result = run_module_script(script, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "jax []"
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 1


# Run in the child before anything else: TensorFlow cannot be imported there, and each attempt is written down
# with the innermost project function that led to it (Keras asks only once, then remembers it is missing).
BLOCK_TENSORFLOW = """
import json, sys, traceback
attempts = []
class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            frames = [f"{frame.filename[len(ROOT) + 1:]}:{frame.name}" for frame in traceback.extract_stack()
                      if frame.filename.startswith(ROOT + "/models/")]
            attempts.append(frames[-1] if frames else "?")
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, BlockTensorFlow())
"""

def test_a_jax_training_run_never_imports_tensorflow(tmp_path):
    config = write_config(tmp_path / "tiny.json", tiny_config(make_dataset(tmp_path / "squares.npz")))
    script = f"""
ROOT = {str(PROJECT_ROOT)!r}
{BLOCK_TENSORFLOW}
from models import train
code = train.main(["--config", {str(config)!r}, "--steps", "3", "--name", "tiny", "--runs-dir", {str(tmp_path)!r},
                   "--no-progress", "--backend", "jax"])
print(json.dumps({{"code": code, "attempts": attempts}}))
"""
    result = run_module_script(script)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["code"] == 0
    assert list((tmp_path / "tiny" / "tensorboard").glob("events.out.tfevents.*"))
    # Keras asks for TensorFlow on any backend (to seed, and to save generator.keras) unless told it is absent.
    assert report["attempts"] == []


def run_module_script(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python on the JAX backend, where the project imports as in a real run."""
    return subprocess.run([sys.executable, "-c", script, *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=240, env=subprocess_env(KERAS_BACKEND="jax"))


def test_a_sample_grid_is_encoded_once_for_its_file_and_tensorboard(tmp_path, monkeypatch):
    from models import images, outputs, tensorboard_events

    encodings = []

    def counted(image):
        encodings.append(image.shape)
        return images.png_bytes(image)

    monkeypatch.setattr(outputs, "png_bytes", counted)
    monkeypatch.setattr(tensorboard_events, "png_bytes", counted)
    run = RunOutputs(tmp_path, tensorboard=True)
    grid = np.random.default_rng(1).integers(0, 256, (12, 8, 3), dtype=np.uint8)
    path = run.save_samples(7, grid)
    run.close()
    assert encodings == [(12, 8, 3)]
    (image,) = read_events(tmp_path / "tensorboard").Images("samples")
    assert image.step == 7 and image.encoded_image_string == path.read_bytes()
    np.testing.assert_array_equal(np.asarray(Image.open(path)), grid)
