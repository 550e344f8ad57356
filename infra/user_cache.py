"""The one folder where LogoGAN keeps what it can rebuild: S3 datasets it downloaded, the FID network's weights,
evaluation statistics of real image sets and JAX's compiled programs, each in a subfolder of its own. One
setting, ``LOGOGAN_CACHE_DIR``; without it, ``logogan`` in the user's cache folder (``$XDG_CACHE_HOME``, else
``~/.cache``), so that deleting one folder clears all of it."""
from __future__ import annotations

import os
from pathlib import Path

SETTING = "LOGOGAN_CACHE_DIR"


def user_cache_dir(*parts: str) -> Path:
    """The cache root, or the subfolder ``parts`` name under it (not created here)."""
    explicit = os.environ.get(SETTING)
    if explicit:
        root = Path(explicit)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "logogan"
    return root.expanduser().joinpath(*parts)
