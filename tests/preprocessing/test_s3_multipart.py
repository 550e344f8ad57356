"""Uploads in parts never leave orphan parts behind a failure the push sees; `ls --incomplete` and `clean` find and
remove what a SIGKILL left. Against SeaweedFS on loopback, which implements ListMultipartUploads, ListParts and
AbortMultipartUpload."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig

from infra import storage
from infra.errors import UserError
from tests.preprocessing.test_s3_cli import project_env, run_cli
from tests.s3_server import s3_server  # noqa: F401

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part S3 accepts
PARTS = 6
SMALL_PARTS = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=2)

# `python -m preprocessing.s3` with 5 MiB parts, one at a time, each held back a little so that a test can stop
# the push while its upload is half done; everything else is the command as shipped. Ctrl-C reaches it as it
# reaches a command in a terminal's foreground: a suite started as a background job (`./run-tests.sh &`) hands its
# children SIGINT ignored, and Python then installs no KeyboardInterrupt for it.
SLOW_PUSH = f"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from boto3.s3.transfer import TransferConfig
from infra import cli, storage
from preprocessing import s3
storage.TRANSFER = TransferConfig(multipart_threshold={PART}, multipart_chunksize={PART}, max_concurrency=1)
shipped = storage.s3_client
def slow_client(*args, **kwargs):
    client = shipped(*args, **kwargs)
    client.meta.events.register("before-call.s3.UploadPart", lambda **_: time.sleep(0.5))
    return client
storage.s3_client = slow_client
cli.run(s3.main, sys.argv[1:])
"""


def big_file(path, parts: int = PARTS):
    path.write_bytes(os.urandom(parts * PART - 1234))  # the last part short, as in real files
    return path


def uploads_in(client, bucket: str) -> list[dict]:
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def parts_of(client, bucket: str, upload: dict) -> int:
    return len(client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts", []))


def start_slow_push(s3_server, tmp_path, source, url):  # noqa: F811
    return subprocess.Popen([sys.executable, "-c", SLOW_PUSH, "push", str(source), url],
                            env={**os.environ, **project_env(s3_server.env)}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_parts(client, bucket: str, process, count: int = 1, timeout: float = 60) -> dict:
    """The push's upload once it holds ``count`` parts (the push still running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        uploads = uploads_in(client, bucket)
        if uploads and parts_of(client, bucket, uploads[0]) >= count:
            return uploads[0]
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no upload with {count} parts within {timeout} s")


class FailAfter:
    """A boto3 event hook that lets ``count`` calls through, then fails like a dropped connection."""

    def __init__(self, client, bucket: str, count: int):
        self.client, self.bucket, self.count = client, bucket, count
        self.calls = 0
        self.uploads_seen: list[dict] = []

    def __call__(self, **_):
        self.calls += 1
        if self.calls == self.count + 1:
            self.uploads_seen = uploads_in(self.client, self.bucket)
        if self.calls > self.count:
            raise botocore.exceptions.ConnectionClosedError(endpoint_url="http://127.0.0.1/injected")


def test_a_push_failing_mid_way_leaves_no_incomplete_upload(s3_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(storage, "TRANSFER", SMALL_PARTS)
    bucket = s3_server.make_bucket("multipart-fails")
    client = s3_server.client()
    fault = FailAfter(s3_server.client(), bucket, count=2)
    client.meta.events.register("before-call.s3.UploadPart", fault)

    with pytest.raises(UserError, match=f"s3://{bucket}/sets/big.bin: .*Connection was closed"):
        storage.upload_file(big_file(tmp_path / "big.bin"), f"s3://{bucket}/sets/", client)
    assert [upload["Key"] for upload in fault.uploads_seen] == ["sets/big.bin"]  # there was one to abort
    assert uploads_in(client, bucket) == []
    assert storage.list_objects(f"s3://{bucket}/", client) == []


def test_when_the_abort_fails_too_the_error_says_how_to_clean(s3_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(storage, "TRANSFER", SMALL_PARTS)
    bucket = s3_server.make_bucket("multipart-abort-fails")
    client = s3_server.client()
    client.meta.events.register("before-call.s3.UploadPart", FailAfter(client, bucket, count=2))
    client.meta.events.register("before-call.s3.AbortMultipartUpload", FailAfter(client, bucket, count=0))

    with pytest.raises(UserError) as failure:
        storage.upload_file(big_file(tmp_path / "big.bin"), f"s3://{bucket}/big.bin", client)
    assert str(failure.value).endswith(f"; its incomplete upload could not be aborted either: remove it with "
                                       f"python -m preprocessing.s3 clean s3://{bucket}/big.bin --older-than 0")
    [left] = storage.incomplete_uploads(f"s3://{bucket}/", s3_server.client())
    assert left.key == "big.bin" and left.parts >= 2 and left.bytes == left.parts * PART


def test_clean_aborts_only_uploads_older_than_asked(s3_server):  # noqa: F811
    bucket = s3_server.make_bucket("multipart-ages")
    client = s3_server.client()
    for key in ("runs/a/ckpt.npz", "runs/b/ckpt.npz", "other/x.npz"):
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 1000)
    listed = storage.incomplete_uploads(f"s3://{bucket}/runs/", client)
    assert sorted((upload.key, upload.parts, upload.bytes) for upload in listed) == [
        ("runs/a/ckpt.npz", 1, 1000), ("runs/b/ckpt.npz", 1, 1000)]
    newest = max(upload.initiated for upload in listed)

    aborted, kept = storage.abort_incomplete_uploads(f"s3://{bucket}/runs/", 2, client, now=newest + timedelta(hours=1))
    assert (aborted, len(kept)) == ([], 2)
    aborted, kept = storage.abort_incomplete_uploads(f"s3://{bucket}/runs/", 2, client, now=newest + timedelta(hours=3))
    assert (sorted(upload.key for upload in aborted), kept) == (["runs/a/ckpt.npz", "runs/b/ckpt.npz"], [])
    assert [upload["Key"] for upload in uploads_in(client, bucket)] == ["other/x.npz"]  # outside the prefix


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_push_stopped_by_a_signal_aborts_its_upload(s3_server, tmp_path, stop):  # noqa: F811
    bucket = s3_server.make_bucket(f"multipart-{stop.name.lower()}")
    client = s3_server.client()
    push = start_slow_push(s3_server, tmp_path, big_file(tmp_path / "big.bin"), f"s3://{bucket}/big.bin")
    wait_for_parts(client, bucket, push)
    push.send_signal(stop)
    _, stderr = push.communicate(timeout=60)
    assert push.returncode == 130 and stderr.endswith(": interrupted\n") and stderr.count("\n") == 1, stderr
    assert uploads_in(client, bucket) == []
    assert storage.list_objects(f"s3://{bucket}/", client) == []


def test_what_a_sigkill_left_is_listed_and_cleaned(s3_server, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("multipart-sigkill")
    client = s3_server.client()
    env = project_env(s3_server.env)
    push = start_slow_push(s3_server, tmp_path, big_file(tmp_path / "big.bin"), f"s3://{bucket}/sets/")
    wait_for_parts(client, bucket, push, count=2)
    push.kill()
    push.communicate(timeout=30)
    [left] = uploads_in(client, bucket)
    parts = parts_of(client, bucket, left)
    assert 2 <= parts < PARTS

    listed = run_cli(["ls", "--incomplete", f"s3://{bucket}/sets/"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    line, summary = listed.stdout.splitlines()
    assert line.split()[2:] == [str(parts), "parts", str(parts * PART), "bytes", f"s3://{bucket}/sets/big.bin",
                                left["UploadId"]]
    assert summary == f"1 incomplete uploads, {parts * PART} bytes in their parts"
    objects = run_cli(["ls", f"s3://{bucket}/sets/"], env, tmp_path)
    assert objects.stdout.splitlines() == ["0 objects, 0 bytes"]  # plain ls shows objects only, as before

    young = run_cli(["clean", f"s3://{bucket}/sets/"], env, tmp_path)
    assert young.returncode == 0, young.stderr
    assert young.stdout.splitlines() == [
        "0 aborted (0 bytes freed), 1 started less than 24 hours ago kept (--older-than 0 aborts them too)"]
    assert len(uploads_in(client, bucket)) == 1

    cleaned = run_cli(["clean", f"s3://{bucket}/sets/", "--older-than", "0"], env, tmp_path)
    assert cleaned.returncode == 0, cleaned.stderr
    aborted, summary = cleaned.stdout.splitlines()
    assert aborted.startswith("aborted ") and aborted.endswith(f"s3://{bucket}/sets/big.bin")
    assert summary == f"1 aborted ({parts * PART} bytes freed)"
    assert uploads_in(client, bucket) == []
    empty = run_cli(["ls", "--incomplete", f"s3://{bucket}/"], env, tmp_path)
    assert empty.stdout.splitlines() == ["0 incomplete uploads, 0 bytes in their parts"]
