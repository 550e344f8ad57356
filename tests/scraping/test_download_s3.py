"""The downloader writing to an S3 prefix on a real S3 server on loopback (SeaweedFS), resumably."""
from __future__ import annotations

import csv
import io

from infra import storage
from scraping import download
from tests.s3_server import s3_server  # noqa: F401
from tests.scraping.conftest import CONTACT
from tests.scraping.test_download import KEPT, LISTED, write_items


def test_download_to_s3_then_resume(wiki, s3_server, tmp_path, monkeypatch, capsys):  # noqa: F811
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.make_bucket("scraping-logos")
    items = write_items(wiki, tmp_path / "items.csv", LISTED)
    args = ["--items", str(items), "--out", f"s3://{bucket}/logos", "--endpoint-url", s3_server.endpoint_url,
            "--no-progress", "--contact", CONTACT, "--max-bytes", "5000"]

    assert download.main(args) == 0
    assert "downloaded 6, skipped 0 (already there), duplicates 1, failed 3" in capsys.readouterr().out
    client = storage.s3_client(s3_server.endpoint_url)
    keys = {entry["key"] for entry in storage.list_objects(f"s3://{bucket}/logos/", client)}
    manifest_path = storage.download_file(f"s3://{bucket}/logos/manifest.csv", tmp_path / "manifest.csv", client)
    rows = list(csv.DictReader(io.StringIO(manifest_path.read_text())))
    assert {row["title"].removeprefix("File:") for row in rows} == set(KEPT)
    assert keys == {f"logos/{row['path']}" for row in rows} | {"logos/manifest.csv"}
    stored = storage.download_file(f"s3://{bucket}/logos/{rows[0]['path']}", tmp_path / "first", client)
    assert stored.read_bytes() == wiki.files[rows[0]["title"].removeprefix("File:")].body

    wiki.log.clear()
    download.main(args)
    assert "downloaded 0, skipped 6 (already there), duplicates 1" in capsys.readouterr().out
    assert {entry["path"].split("px-", 1)[1] for entry in wiki.requests_to("/thumb/")} == {"d-corrupt.png", "e-big.png"}
