"""Presets train the same weights as they did before the config was resolved in one place (issue 40).

tests/models/fixtures/preset_weights.json holds, per preset, a checksum of every variable of the last checkpoint
after two training steps (seed 0, the preset's own options, tiny synthetic data of the preset's image size), as the
code before issue 40 wrote them. A change in how an option resolves (an architecture, a normalization, an
activation, a width or an optimizer setting chosen differently) changes a variable's shape or values and fails
here. Record again (``python -m tests.models.test_preset_weights``) only for a change meant to change training.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from models import train
from models.run_folder import CHECKPOINTS_DIR
from tests.models.helpers import PROJECT_ROOT, make_dataset, write_config

FIXTURE = Path(__file__).parent / "fixtures" / "preset_weights.json"
# Preset: (image side, channels) of its data, and how far (a fraction of each variable's summed magnitude) its
# checksums may lie from the fixture. logos_shapes: the shapes generator and a discriminator left to its choice's
# defaults; fashion_small_data: conditional networks (class-conditional batch norm, projection), hinge loss, LeCam,
# EMA and an auxiliary classifier. TensorFlow's oneDNN kernels differ from CPU to CPU in their rounding, and the
# shapes renderer's discrete choices carry that round-off further: on an AMD EPYC its two steps land up to 1.2% of
# a variable's magnitude from the fixture (recorded on another CPU), where fashion_small_data stays within 2e-6.
# A changed architecture, width or initializer changes the shapes, or the values by far more.
PRESETS = {"logos_shapes": (56, 3, 3e-2), "fashion_small_data": (32, 1, 1e-5)}
STEPS = 2


def train_preset(name: str, folder: Path) -> Path:
    side, channels, _ = PRESETS[name]
    config = json.loads((PROJECT_ROOT / "configs" / f"{name}.json").read_text())
    config.update(data_path=str(make_dataset(folder / f"{name}.npz", count=64, size=side, channels=channels)),
                  seed=0, tensorboard=False)
    path = write_config(folder / f"{name}.json", config)
    assert train.main(["--config", str(path), "--steps", str(STEPS), "--runs-dir", str(folder), "--name", name,
                       "--no-progress", "--backend", "tensorflow"]) == 0
    return folder / name


def weight_checksums(run: Path) -> dict[str, list]:
    """Per checkpoint variable: its shape, the sum of its values and the sum of their absolute values."""
    with np.load(run / CHECKPOINTS_DIR / "last" / "variables.npz") as archive:
        return {name: [list(archive[name].shape), float(archive[name].astype(np.float64).sum()),
                       float(np.abs(archive[name].astype(np.float64)).sum())] for name in archive.files}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_trains_the_weights_it_trained_before_the_change(tmp_path, name):
    expected = json.loads(FIXTURE.read_text())[name]
    actual = weight_checksums(train_preset(name, tmp_path))
    assert sorted(actual) == sorted(expected)
    for variable, (shape, total, magnitude) in expected.items():
        assert actual[variable][0] == shape, variable
        tolerance = PRESETS[name][2] * max(magnitude, 1.0)
        assert actual[variable][1] == pytest.approx(total, abs=tolerance), variable
        assert actual[variable][2] == pytest.approx(magnitude, abs=tolerance), variable


def record(folder: Path) -> None:
    FIXTURE.parent.mkdir(exist_ok=True)
    checksums = {name: weight_checksums(train_preset(name, folder)) for name in sorted(PRESETS)}
    lines = [f"  {json.dumps(name)}: {{\n" + ",\n".join(f"    {json.dumps(variable)}: {json.dumps(value)}"
                                                   for variable, value in sorted(variables.items())) + "\n  }"
             for name, variables in checksums.items()]
    FIXTURE.write_text("{\n" + ",\n".join(lines) + "\n}\n")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        record(Path(scratch))
    print(f"wrote {FIXTURE}", file=sys.stderr)
