"""infra.storage against a real S3 server on loopback (SeaweedFS)."""
from __future__ import annotations

import hashlib
import os
import socket

import pytest

from infra import storage
from infra.errors import UserError
from tests.s3_server import s3_server  # noqa: F401


def unused_loopback_port() -> int:
    """A loopback port nothing listens on: bound by the OS, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def client(s3_server, monkeypatch):  # noqa: F811
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return storage.s3_client()


def test_split_and_recognise_urls():
    assert storage.split_s3_url("s3://bucket/runs/a/b.npz") == ("bucket", "runs/a/b.npz")
    assert storage.split_s3_url("s3://bucket") == ("bucket", "")
    assert storage.is_s3_url("s3://b/k") and not storage.is_s3_url("data/x.npz")
    with pytest.raises(UserError, match="not an S3 URL"):
        storage.split_s3_url("https://bucket/key")
    with pytest.raises(UserError, match="no bucket name"):
        storage.split_s3_url("s3:///key")


def test_etag_of_small_and_multipart_files(tmp_path):
    small = tmp_path / "small.bin"
    small.write_bytes(b"hello")
    with open(small, "rb") as stream:
        assert storage.etag_of_stream(stream, 5) == hashlib.md5(b"hello").hexdigest()
    parts = [os.urandom(1000), os.urandom(1000), os.urandom(500)]
    big = tmp_path / "big.bin"
    big.write_bytes(b"".join(parts))
    expected = hashlib.md5(b"".join(hashlib.md5(part).digest() for part in parts)).hexdigest() + "-3"
    with open(big, "rb") as stream:
        assert storage.etag_of_stream(stream, 2500, part_size=1000) == expected


def test_upload_download_and_list(s3_server, client, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("storage-basic")
    source = tmp_path / "dataset.npz"
    source.write_bytes(os.urandom(3000))
    storage.upload_file(source, f"s3://{bucket}/datasets/", client)
    listing = storage.list_objects(f"s3://{bucket}/datasets", client)
    assert [(entry["key"], entry["size"]) for entry in listing] == [("datasets/dataset.npz", 3000)]
    assert listing[0]["etag"] == hashlib.md5(source.read_bytes()).hexdigest()

    copy = storage.download_file(f"s3://{bucket}/datasets/dataset.npz", tmp_path / "copy.npz", client)
    assert copy.read_bytes() == source.read_bytes()
    before = copy.stat().st_mtime_ns
    storage.download_file(f"s3://{bucket}/datasets/dataset.npz", copy, client)
    assert copy.stat().st_mtime_ns == before  # identical copy: not downloaded again


def test_multipart_upload_is_verified_and_round_trips(s3_server, client, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("storage-multipart")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(storage.PART_SIZE + 12345))
    storage.upload_file(source, f"s3://{bucket}/big.bin", client)
    (entry,) = storage.list_objects(f"s3://{bucket}/big.bin", client)
    assert entry["etag"].endswith("-2")
    with open(source, "rb") as stream:
        assert entry["etag"] == storage.etag_of_stream(stream, source.stat().st_size)
    copy = storage.download_file(f"s3://{bucket}/big.bin", tmp_path / "back.bin", client)
    assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()


def test_push_and_pull_a_folder_skip_identical_files(s3_server, client, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("storage-sync")
    run = tmp_path / "run"
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "config.json").write_text('{"steps": 10}')
    (run / "checkpoints" / "last" / "weights.bin").write_bytes(os.urandom(2048))

    pushed = storage.push(run, f"s3://{bucket}/runs/demo", client)
    assert sorted(pushed.copied) == [
        f"s3://{bucket}/runs/demo/checkpoints/last/weights.bin",
        f"s3://{bucket}/runs/demo/config.json",
    ]
    (run / "config.json").write_text('{"steps": 20}')
    again = storage.push(run, f"s3://{bucket}/runs/demo/", client)
    assert again.copied == [f"s3://{bucket}/runs/demo/config.json"]
    assert again.unchanged == [f"s3://{bucket}/runs/demo/checkpoints/last/weights.bin"]

    local = tmp_path / "pulled"
    first = storage.pull(f"s3://{bucket}/runs/demo", local, client)
    assert len(first.copied) == 2 and not first.unchanged
    assert (local / "config.json").read_text() == '{"steps": 20}'
    assert (local / "checkpoints" / "last" / "weights.bin").read_bytes() == (run / "checkpoints" / "last" / "weights.bin").read_bytes()
    (local / "config.json").write_text("edited locally")
    second = storage.pull(f"s3://{bucket}/runs/demo/", local, client)
    assert second.copied == [str(local / "config.json")]
    assert second.unchanged == [str(local / "checkpoints" / "last" / "weights.bin")]
    assert (local / "config.json").read_text() == '{"steps": 20}'


def test_push_of_a_folder_in_use_skips_what_moves_and_copies_the_rest(s3_server, client, tmp_path, monkeypatch):  # noqa: F811
    bucket = s3_server.make_bucket("storage-busy")
    run = tmp_path / "run"
    (run / "checkpoints" / "step_000400").mkdir(parents=True)
    (run / "checkpoints" / "step_000400" / "variables.npz").write_bytes(os.urandom(1024))
    (run / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    real_upload = storage.upload_file

    def upload_while_training(path, url, client=None):
        if path.name == "variables.npz":  # the trainer rotates this checkpoint away mid-upload
            path.unlink()
        real_upload(path, url, client)
        if path.name == "metrics.jsonl":  # and appends a log line while it is being copied
            with path.open("a") as log:
                log.write('{"step": 2}\n')
            os.utime(path, ns=(1, 1))
            raise UserError(f"{url}: upload verification failed")  # what the ETag check then finds

    monkeypatch.setattr(storage, "upload_file", upload_while_training)
    result = storage.push(run, f"s3://{bucket}/runs/busy", client)
    assert result.copied == [f"s3://{bucket}/runs/busy/config.json"]
    assert sorted(result.changing) == sorted(
        [str(run / "checkpoints" / "step_000400" / "variables.npz"), str(run / "metrics.jsonl")]
    )
    monkeypatch.setattr(storage, "upload_file", real_upload)
    assert storage.push(run, f"s3://{bucket}/runs/busy", client).copied == [f"s3://{bucket}/runs/busy/metrics.jsonl"]


def test_push_of_a_folder_still_fails_for_a_file_that_stood_still(s3_server, client, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(UserError, match="bucket 'no-such-bucket-busy' does not exist"):
        storage.push(run, "s3://no-such-bucket-busy/runs/x", client)


def test_wrong_credentials_give_one_line(s3_server, client, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("storage-denied")
    wrong = s3_server.client(secret_key="not-the-secret")
    with pytest.raises(UserError, match="access denied") as denied:
        storage.list_objects(f"s3://{bucket}/", wrong)
    assert "\n" not in str(denied.value)
    source = tmp_path / "a.txt"
    source.write_text("a")
    with pytest.raises(UserError, match="access denied"):
        storage.upload_file(source, f"s3://{bucket}/a.txt", wrong)


def test_missing_bucket_and_object_give_one_line(client, tmp_path):
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        storage.list_objects("s3://no-such-bucket/x", client)
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        storage.download_file("s3://no-such-bucket/x.npz", tmp_path / "x.npz", client)
    source = tmp_path / "a.txt"
    source.write_text("a")
    with pytest.raises(UserError, match="bucket 'no-such-bucket' does not exist"):
        storage.upload_file(source, "s3://no-such-bucket/a.txt", client)


def test_missing_object_keeps_local_file(s3_server, client, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("storage-missing")
    local = tmp_path / "keep.npz"
    local.write_bytes(b"precious")
    with pytest.raises(UserError, match="no such object"):
        storage.download_file(f"s3://{bucket}/absent.npz", local, client)
    with pytest.raises(UserError, match="no objects under this prefix"):
        storage.pull(f"s3://{bucket}/absent/", tmp_path / "out", client)
    assert local.read_bytes() == b"precious"


def test_unreachable_endpoint_and_unknown_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    unreachable = storage.s3_client(endpoint_url=f"http://127.0.0.1:{unused_loopback_port()}")
    with pytest.raises(UserError, match="cannot reach the S3 endpoint"):
        storage.list_objects("s3://bucket/x", unreachable)
    with pytest.raises(UserError, match="profile 'nobody' is not defined"):
        storage.s3_client(profile="nobody")


def test_a_trailing_slash_means_a_folder_even_before_it_exists(s3_server, client, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("storage-folder-slash")
    source = tmp_path / "logo.png"
    source.write_bytes(os.urandom(700))
    storage.upload_file(source, f"s3://{bucket}/in/", client)
    pulled = storage.pull(f"s3://{bucket}/in/logo.png", f"{tmp_path}/new/", client)
    assert pulled.copied == [str(tmp_path / "new" / "logo.png")]
    assert (tmp_path / "new" / "logo.png").read_bytes() == source.read_bytes()
    downloaded = storage.download_file(f"s3://{bucket}/in/logo.png", f"{tmp_path}/other/deeper/", client)
    assert downloaded == tmp_path / "other" / "deeper" / "logo.png" and downloaded.read_bytes() == source.read_bytes()
    storage.pull(f"s3://{bucket}/in/logo.png", tmp_path / "renamed.png", client)  # no slash: the file's own name
    assert (tmp_path / "renamed.png").read_bytes() == source.read_bytes()
