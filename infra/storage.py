"""S3 staging for every stage: datasets, run folders and checkpoints move between disks and buckets.

Transfers are checked end to end: after an upload the object's ETag must equal the one computed from the
local bytes, and a download is verified the same way before it replaces the local file (atomically, so a
failed pull never leaves a truncated file). Because S3 computes ETags per upload part, both sides use the
same part size (:data:`PART_SIZE`); objects uploaded by other tools with another part size are still
recognised by inferring their part size from the part count.

An upload in parts that fails in any way this process sees (an error, Ctrl-C, a SIGTERM that the command
turns into one) is aborted, so the bucket keeps no orphan parts; what a SIGKILL or a lost machine leaves
behind is listed by :func:`incomplete_uploads` and removed by :func:`abort_incomplete_uploads`, as the S3
lifecycle rule that aborts incomplete multipart uploads would.

Problems a user can fix (wrong credentials, a missing bucket, an unreachable endpoint, a malformed URL)
become a one-line :class:`~infra.errors.UserError`. A local destination spelled with a trailing slash is a
folder, created when missing, as with ``aws s3 cp``.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from infra.atomic import atomic_write
from infra.errors import UserError

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # multipart threshold and part size; fixes the ETag of what we upload
TRANSFER = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)
_CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
_ACCESS_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


@dataclass
class SyncResult:
    """What a push or pull did: the destinations it wrote, the ones already identical, and (push of a
    folder) the local files that changed or vanished while being copied, which the next push copies."""

    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changing: list[str] = field(default_factory=list)


def is_s3_url(text: str) -> bool:
    return str(text).startswith("s3://")


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> ``("bucket", "key/prefix")``; the key may be empty."""
    if not is_s3_url(url):
        raise UserError(f"{url!r} is not an S3 URL; expected s3://BUCKET[/KEY]")
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise UserError(f"{url!r} has no bucket name; expected s3://BUCKET[/KEY]")
    return bucket, key


def s3_client(endpoint_url: str | None = None, profile: str | None = None):
    """A boto3 S3 client; the endpoint defaults to ``$AWS_ENDPOINT_URL`` (for S3-compatible servers).

    Credentials come from ``profile``, else the usual boto3 chain (environment, config files, instance role).
    """
    try:
        session = boto3.session.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound:
        raise UserError(f"AWS profile {profile!r} is not defined in ~/.aws/config or ~/.aws/credentials") from None
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    try:
        return session.client("s3", endpoint_url=endpoint_url, config=_CLIENT_CONFIG)
    except ValueError as error:
        raise UserError(f"endpoint URL {endpoint_url!r} is not valid ({error}); expected e.g. http://127.0.0.1:8333") from None


def etag_of_stream(stream: BinaryIO, size: int, part_size: int = PART_SIZE) -> str:
    """The ETag S3 gives ``size`` bytes uploaded in parts of ``part_size`` (plain MD5 below that size)."""
    stream.seek(0)
    digests = []
    for start in range(0, max(size, 1), part_size):
        part = hashlib.md5()
        remaining = min(part_size, size - start)
        while remaining > 0 and (block := stream.read(min(MIB, remaining))):
            part.update(block)
            remaining -= len(block)
        digests.append(part.digest())
    if size < part_size:
        return digests[0].hex()
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def matches_etag(path: Path, etag: str, size: int) -> bool:
    """Whether the local file holds the same bytes as an object with this ETag and size."""
    if not path.is_file() or path.stat().st_size != size:
        return False
    with open(path, "rb") as stream:
        return _stream_matches_etag(stream, etag, size)


def _stream_matches_etag(stream: BinaryIO, etag: str, size: int) -> bool:
    etag = etag.strip('"')
    if "-" not in etag:
        return etag_of_stream(stream, size, part_size=size + 1) == etag
    body, _, count = etag.rpartition("-")
    if not count.isdigit():
        return False
    parts = int(count)
    # Another tool may have used another part size; sizes are whole MiB in every common client.
    inferred = math.ceil(math.ceil(size / parts) / MIB) * MIB
    return any(etag_of_stream(stream, size, part_size) == etag for part_size in dict.fromkeys((PART_SIZE, inferred)))


@contextlib.contextmanager
def _s3_errors(url: str, client) -> Iterator[None]:
    """Turn boto3's failures into one line that names the URL and what to check."""
    try:
        yield
    except botocore.exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        raise UserError(_describe_client_error(url, code, str(error), client)) from None
    except S3UploadFailedError as error:
        raise UserError(f"upload to {url} failed: {_one_line(error)}") from None
    except botocore.exceptions.NoCredentialsError:
        raise UserError(
            f"{url}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile, "
            "or run on a machine with an instance role"
        ) from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as error:
        raise UserError(f"{url}: cannot reach the S3 endpoint ({_one_line(error)}); check --endpoint-url / AWS_ENDPOINT_URL") from None
    except botocore.exceptions.BotoCoreError as error:
        raise UserError(f"{url}: {_one_line(error)}") from None


def _describe_client_error(url: str, code: str, message: str, client) -> str:
    bucket, _ = split_s3_url(url)
    if code in _ACCESS_DENIED:
        return f"{url}: access denied ({code}); check the credentials (AWS_ACCESS_KEY_ID/--profile) and their permissions"
    if code == "NoSuchBucket" or (code in ("404", "NoSuchKey") and not _bucket_exists(client, bucket)):
        return f"{url}: bucket {bucket!r} does not exist"
    if code in ("404", "NoSuchKey"):
        return f"{url}: no such object"
    return f"{url}: {_one_line(message)}"


def _bucket_exists(client, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as error:
        return str(error.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket")
    return True


def _one_line(error: object) -> str:
    return " ".join(str(error).split())


def _head(client, bucket: str, key: str) -> dict | None:
    """The object's metadata, or None when there is no such object (a missing bucket still raises)."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey") and _bucket_exists(client, bucket):
            return None
        raise


def upload_file(local_path, url: str, client=None) -> None:
    """Upload one file (in parts when large) and check the stored ETag against the local bytes."""
    local_path = Path(local_path)
    if not local_path.is_file():
        raise UserError(f"{local_path}: no such file to upload")
    client = client or s3_client()
    bucket, key = split_s3_url(url)
    if not key or key.endswith("/"):
        key += local_path.name
        url = f"s3://{bucket}/{key}"
    with _aborted_on_failure(client, bucket, key), _s3_errors(url, client):
        client.head_bucket(Bucket=bucket)
        client.upload_file(str(local_path), bucket, key, Config=TRANSFER)
        stored = client.head_object(Bucket=bucket, Key=key)
    if not matches_etag(local_path, stored["ETag"], stored["ContentLength"]):
        raise UserError(f"{url}: upload verification failed; the stored ETag {stored['ETag']} does not match {local_path}")


@contextlib.contextmanager
def _aborted_on_failure(client, bucket: str, key: str) -> Iterator[None]:
    """Abort every multipart upload of ``key`` started inside the block when the block fails in any way.

    boto3's transfer manager aborts on the failures it sees itself; this also covers Ctrl-C and SIGTERM
    arriving between its calls, and says so when the abort itself fails (a lost connection).
    """
    started: list[str] = []

    def record(parsed=None, **_):
        if parsed and parsed.get("Bucket") == bucket and parsed.get("Key") == key and parsed.get("UploadId"):
            started.append(parsed["UploadId"])

    event = "after-call.s3.CreateMultipartUpload"
    client.meta.events.register(event, record)
    try:
        yield
    except BaseException as failure:
        left = [upload_id for upload_id in started if not _abort_upload(client, bucket, key, upload_id)]
        if left and isinstance(failure, UserError):
            raise UserError(f"{failure}; its incomplete upload could not be aborted either: remove it with "
                            f"python -m preprocessing.s3 clean s3://{bucket}/{key} --older-than 0") from None
        raise
    finally:
        client.meta.events.unregister(event, record)


def _abort_upload(client, bucket: str, key: str, upload_id: str) -> bool:
    """Abort one multipart upload; True when it is gone (aborted now, or already by boto3)."""
    try:
        _abort(client, bucket, key, upload_id)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
        return False
    return True


def _abort(client, bucket: str, key: str, upload_id: str) -> None:
    """Abort one multipart upload; one that is already gone (completed or aborted) is no error."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except botocore.exceptions.ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) not in ("NoSuchUpload", "404"):
            raise


@dataclass
class IncompleteUpload:
    """A multipart upload that was started and neither completed nor aborted: its parts take space."""

    key: str
    upload_id: str
    initiated: datetime
    parts: int
    bytes: int

    def age_hours(self, now: datetime) -> float:
        return (now - self.initiated).total_seconds() / 3600


def incomplete_uploads(url: str, client=None) -> list[IncompleteUpload]:
    """The incomplete multipart uploads under the URL's key prefix, oldest first."""
    client = client or s3_client()
    bucket, prefix = split_s3_url(url)
    uploads = []
    with _s3_errors(url, client):
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Uploads", []):
                sizes = _part_sizes(client, bucket, entry["Key"], entry["UploadId"])
                if sizes is not None:
                    initiated = entry["Initiated"].astimezone(timezone.utc)
                    uploads.append(IncompleteUpload(entry["Key"], entry["UploadId"], initiated, len(sizes), sum(sizes)))
    return sorted(uploads, key=lambda upload: (upload.initiated, upload.key))


def _part_sizes(client, bucket: str, key: str, upload_id: str) -> list[int] | None:
    """The sizes of an upload's parts; None when it was completed or aborted since it was listed."""
    sizes = []
    try:
        for page in client.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id):
            sizes.extend(part["Size"] for part in page.get("Parts", []))
    except botocore.exceptions.ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in ("NoSuchUpload", "404"):
            return None
        raise
    return sizes


def abort_incomplete_uploads(url: str, older_than_hours: float, client=None,
                             now: datetime | None = None) -> tuple[list[IncompleteUpload], list[IncompleteUpload]]:
    """Abort the incomplete uploads under the URL started at least ``older_than_hours`` ago; return
    (aborted, kept). Younger ones are kept: they may belong to a push that is still running."""
    client = client or s3_client()
    bucket, _ = split_s3_url(url)
    now = now or datetime.now(timezone.utc)
    aborted, kept = [], []
    for upload in incomplete_uploads(url, client):
        if upload.age_hours(now) < older_than_hours:
            kept.append(upload)
            continue
        with _s3_errors(f"s3://{bucket}/{upload.key}", client):
            _abort(client, bucket, upload.key, upload.upload_id)
        aborted.append(upload)
    return aborted, kept


def download_file(url: str, local_path, client=None) -> Path:
    """Download one object atomically and verify it; a local copy with the same bytes is left alone.

    ``local_path`` may be a folder (see :func:`local_destination`), in which case the object's name is kept.
    """
    client = client or s3_client()
    bucket, key = split_s3_url(url)
    if not key or key.endswith("/"):
        raise UserError(f"{url}: names a folder; give the URL of one object, or use pull for a prefix")
    local_path = local_destination(local_path, key)
    with _s3_errors(url, client):
        head = _head(client, bucket, key)
        if head is None:
            raise UserError(f"{url}: no such object")
        if matches_etag(local_path, head["ETag"], head["ContentLength"]):
            return local_path
        _download_verified(client, bucket, key, head["ETag"], head["ContentLength"], local_path)
    return local_path


def local_destination(local_path, key: str) -> Path:
    """Where the object ``key`` lands: inside ``local_path`` when that is a folder (one that exists, or any
    path ending in a slash, made when missing), else at ``local_path`` itself."""
    text = os.fspath(local_path)
    if Path(text).is_dir() or text.endswith(("/", os.sep)):
        return Path(text) / PurePosixPath(key).name
    return Path(text)


def _download_verified(client, bucket: str, key: str, etag: str, size: int, local_path: Path) -> None:
    with atomic_write(local_path, "w+b") as handle:
        client.download_fileobj(bucket, key, handle, Config=TRANSFER)
        handle.flush()
        if os.fstat(handle.fileno()).st_size != size or not _stream_matches_etag(handle, etag, size):
            raise UserError(f"s3://{bucket}/{key}: download verification failed (ETag {etag}); {local_path} left unchanged")


def list_objects(url: str, client=None) -> list[dict]:
    """Every object under the URL's key prefix: ``[{"key", "size", "etag"}]`` sorted by key."""
    client = client or s3_client()
    bucket, prefix = split_s3_url(url)
    objects = []
    with _s3_errors(url, client):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                objects.append({"key": entry["Key"], "size": entry["Size"], "etag": entry["ETag"].strip('"')})
    return sorted(objects, key=lambda entry: entry["key"])


def push(local_path_or_dir, url: str, client=None) -> SyncResult:
    """Upload a file, or a folder's files under the URL as a prefix; objects already identical are skipped."""
    source = Path(local_path_or_dir)
    client = client or s3_client()
    bucket, prefix = split_s3_url(url)
    if source.is_file():
        key = prefix + source.name if not prefix or prefix.endswith("/") else prefix
        pairs = [(source, key)]
    elif source.is_dir():
        base = prefix.rstrip("/") + "/" if prefix else ""
        pairs = [(path, base + path.relative_to(source).as_posix()) for path in sorted(source.rglob("*")) if path.is_file()]
    else:
        raise UserError(f"{source}: no such file or folder to push")
    remote = {entry["key"]: entry for entry in list_objects(f"s3://{bucket}/{prefix}", client)}
    result = SyncResult()
    for path, key in pairs:
        target = f"s3://{bucket}/{key}"
        try:
            before = path.stat()
        except FileNotFoundError:
            result.changing.append(str(path))
            continue
        try:
            known = remote.get(key)
            if known and matches_etag(path, known["etag"], known["size"]):
                result.unchanged.append(target)
                continue
            upload_file(path, target, client)
        except (OSError, UserError):
            # A folder being written while it syncs (a training run rotating checkpoints) is normal: skip
            # what moved under us and let the next push copy it. A file that stood still failed for real.
            if source.is_dir() and not _unchanged_since(path, before):
                result.changing.append(str(path))
                continue
            raise
        result.copied.append(target)
    return result


def _unchanged_since(path: Path, before: os.stat_result) -> bool:
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    return (now.st_size, now.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def pull(url: str, local_path_or_dir, client=None) -> SyncResult:
    """Download one object, or every object under a prefix into a folder; identical local files are skipped."""
    client = client or s3_client()
    bucket, prefix = split_s3_url(url)
    target = Path(local_path_or_dir)
    objects = [entry for entry in list_objects(url, client) if not entry["key"].endswith("/")]
    single = [entry for entry in objects if entry["key"] == prefix]
    if single:
        pairs = [(single[0], local_destination(local_path_or_dir, prefix))]
    else:
        base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        inside = [entry for entry in objects if entry["key"].startswith(base)]
        if not inside:
            raise UserError(f"{url}: no objects under this prefix")
        pairs = [(entry, _local_path_under(target, entry["key"][len(base) :], url)) for entry in inside]
    result = SyncResult()
    for entry, destination in pairs:
        if matches_etag(destination, entry["etag"], entry["size"]):
            result.unchanged.append(str(destination))
            continue
        with _s3_errors(f"s3://{bucket}/{entry['key']}", client):
            _download_verified(client, bucket, entry["key"], entry["etag"], entry["size"], destination)
        result.copied.append(str(destination))
    return result


def _local_path_under(folder: Path, relative_key: str, url: str) -> Path:
    """Where an object lands inside ``folder``; keys that would escape it (``..``, absolute) are refused."""
    parts = PurePosixPath(relative_key).parts
    if not parts or relative_key.startswith("/") or ".." in parts:
        raise UserError(f"{url}: object key {relative_key!r} would be written outside {folder}; refusing to pull it")
    return folder.joinpath(*parts)
