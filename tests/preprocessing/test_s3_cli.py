"""``python -m preprocessing.s3`` as a user runs it, against SeaweedFS on loopback."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from preprocessing.dataset import load_dataset, save_dataset
from tests.s3_server import s3_server  # noqa: F401


def run_cli(args, env, cwd):
    return subprocess.run(
        [sys.executable, "-m", "preprocessing.s3", *args],
        env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def project_env(server_env):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {**server_env, "PYTHONPATH": root}


def test_push_ls_pull_round_trip(s3_server, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("cli-roundtrip")
    env = project_env(s3_server.env)
    dataset = save_dataset(tmp_path / "logos_8.npz", np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), np.uint8))
    size = dataset.stat().st_size

    pushed = run_cli(["push", str(dataset), f"s3://{bucket}/datasets/"], env, tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.splitlines()[-1] == "1 copied, 0 already identical"

    listed = run_cli(["ls", f"s3://{bucket}/datasets/"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[::2] == [str(size), f"s3://{bucket}/datasets/logos_8.npz"]

    pulled_dir = tmp_path / "pulled"
    pulled_dir.mkdir()
    pulled = run_cli(["pull", f"s3://{bucket}/datasets/logos_8.npz", str(pulled_dir)], env, tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert (pulled_dir / "logos_8.npz").read_bytes() == dataset.read_bytes()
    again = run_cli(["pull", f"s3://{bucket}/datasets/logos_8.npz", str(pulled_dir)], env, tmp_path)
    assert again.stdout.strip() == "0 copied, 1 already identical"


def test_a_sharded_dataset_moves_with_its_shards(s3_server, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("cli-shards")
    env = project_env(s3_server.env)
    x = np.random.default_rng(1).integers(0, 256, (30, 8, 8, 3), np.uint8)
    y = np.arange(30) % 3
    dataset = save_dataset(tmp_path / "made" / "big.npz", x, y, ["a", "b", "c"], shard_bytes=x.nbytes // 3)
    shards = sorted(path.name for path in dataset.parent.glob("big.shard-*.npz"))
    assert len(shards) == 3

    pushed = run_cli(["push", str(dataset), f"s3://{bucket}/sets/"], env, tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.splitlines()[-1] == "4 copied, 0 already identical"
    # Shards go first, so a reader that finds the index finds its shards.
    assert [line.split("/")[-1] for line in pushed.stdout.splitlines()[:-1]] == [*shards, "big.npz"]

    pulled_dir = tmp_path / "pulled"
    pulled_dir.mkdir()
    pulled = run_cli(["pull", f"s3://{bucket}/sets/big.npz", str(pulled_dir)], env, tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert sorted(path.name for path in pulled_dir.iterdir()) == sorted([*shards, "big.npz"])
    copy = load_dataset(pulled_dir / "big.npz")
    assert np.array_equal(copy.x, x) and np.array_equal(copy.y, y) and copy.class_names == ["a", "b", "c"]
    again = run_cli(["pull", f"s3://{bucket}/sets/big.npz", str(pulled_dir / "big.npz")], env, tmp_path)
    assert again.stdout.strip() == "0 copied, 4 already identical"

    into_new_folder = run_cli(["pull", f"s3://{bucket}/sets/big.npz", f"{tmp_path}/fresh/"], env, tmp_path)
    assert into_new_folder.returncode == 0, into_new_folder.stderr
    assert sorted(path.name for path in (tmp_path / "fresh").iterdir()) == sorted([*shards, "big.npz"])

    s3_server.client().delete_object(Bucket=bucket, Key=f"sets/{shards[1]}")
    broken = run_cli(["pull", f"s3://{bucket}/sets/big.npz", str(tmp_path / "other.npz")], env, tmp_path)
    assert broken.returncode == 2 and broken.stderr.count("\n") == 1
    assert f"names 1 shard(s) that are not on S3 beside it, e.g. s3://{bucket}/sets/{shards[1]}" in broken.stderr


def test_wrong_credentials_and_missing_bucket_are_one_line(s3_server, tmp_path):  # noqa: F811
    bucket = s3_server.make_bucket("cli-errors")
    wrong = {**project_env(s3_server.env), "AWS_SECRET_ACCESS_KEY": "wrong-secret"}
    denied = run_cli(["ls", f"s3://{bucket}/"], wrong, tmp_path)
    assert denied.returncode == 2
    assert denied.stderr.count("\n") == 1
    assert denied.stderr.startswith("preprocessing.s3: error: ") and "access denied" in denied.stderr

    missing = run_cli(["pull", "s3://no-such-bucket-here/x.npz", str(tmp_path)], project_env(s3_server.env), tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "bucket 'no-such-bucket-here' does not exist" in missing.stderr

    bad_url = run_cli(["push", str(tmp_path), "bucket/key"], project_env(s3_server.env), tmp_path)
    assert bad_url.returncode == 2 and "is not an S3 URL" in bad_url.stderr
