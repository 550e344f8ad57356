"""The shared assets folder: the canonical FID network, its reference features and Fashion-MNIST's first 8,226
images, which the tests, benches and evaluation read from one place. One setting, ``LOGOGAN_SHARED``; without
it, ``shared`` beside the project folder (``../shared`` from the project root)."""
from __future__ import annotations

import os
from pathlib import Path

SETTING = "LOGOGAN_SHARED"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get(SETTING) or PROJECT_ROOT.parent / "shared").expanduser().resolve()
