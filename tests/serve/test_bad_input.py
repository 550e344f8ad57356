"""Hostile and careless requests: deeply nested JSON, NUL bytes, links out of allowed folders, and a walk
over every route with bad input that must never answer 500 or log a traceback."""
from __future__ import annotations

import io
import json
import logging
import shutil

import numpy as np
import pytest

from models.run_folder import CONFIG_FILE
from models.serve.app import create_app
from models.serve.jobs import JobQueue
from preprocessing.dataset import save_dataset, shard_names
from tests.serve.conftest import RUN, RUN_STEPS, tiny_config

SAMPLE = f"step_{RUN_STEPS:06d}.png"


@pytest.fixture
def site(tmp_path, runs_dir):
    """A data root and a runs folder (a good run, a broken one) with links that point out of them."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the web")
    root = tmp_path / "data"
    (root / "idx").mkdir(parents=True)
    (root / "idx" / "train-images-idx3-ubyte.gz").symlink_to(outside / "secret.txt")
    images = np.zeros((8, 16, 16, 1), dtype=np.uint8)
    save_dataset(root / "sharded.npz", images, shard_bytes=images.nbytes // 2)
    first_shard = shard_names(root / "sharded.npz")[0]
    shutil.move(root / first_shard, outside / first_shard)
    (root / first_shard).symlink_to(outside / first_shard)
    save_dataset(root / "good.npz", images)

    runs = tmp_path / "runs"
    shutil.copytree(runs_dir / RUN, runs / RUN)
    shutil.copytree(runs_dir / RUN, runs / "broken")
    (runs / "broken" / CONFIG_FILE).write_text("[]")
    samples = runs / RUN / "samples"
    (samples / "step_999999.png").symlink_to(outside / "secret.txt")
    (samples / "step_999998.png").symlink_to(runs / RUN / CONFIG_FILE)
    queue = JobQueue(runs)
    yield create_app(runs, root, jobs=queue).test_client(), runs, root
    queue.close()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def post_config(client, **changes):
    return client.post("/api/jobs", json={**tiny_config("good.npz"), **changes})


def test_deeply_nested_json_is_a_400(site):
    client, _, _ = site
    for body in (nested(100_000), b'{"generator": ' + nested(900) + b"}"):
        answer = client.post("/api/jobs", data=body, content_type="application/json")
        assert answer.status_code == 400, answer.data[:200]
        assert "nested too deeply" in answer.get_json()["error"]
    upload = client.post("/api/jobs", data={"config": (io.BytesIO(nested(50_000)), "deep.json")})
    assert upload.status_code == 415 and "takes Content-Type: application/json" in upload.get_json()["error"]


def test_a_number_of_thousands_of_digits_is_a_400(site):
    """Python refuses to read an integer of more than 4300 digits: that was a 500."""
    client, _, _ = site
    body = json.dumps(tiny_config("good.npz"))[:-1].encode() + b', "seed": ' + b"7" * 5000 + b"}"
    answer = client.post("/api/jobs", data=body, content_type="application/json")
    assert answer.status_code == 400, answer.data[:300]
    assert "request body holds a number with 5000 digits; at most 40 are accepted" in answer.get_json()["error"]
    assert client.get("/api/jobs").get_json()["jobs"] == []


@pytest.mark.parametrize("added, words", [
    (b', "label_smoothing": NaN', "request body holds NaN, which JSON does not allow"),
    (b', "r1_gamma": 1e400', "request body holds the number 1e400, beyond the range of a float"),
    (b', "seed": 1, "seed": 2', "request body gives the key 'seed' twice in one object"),
])
def test_json_that_only_python_reads_is_a_400(site, added, words):
    """NaN passes every range check and ends in a diverged run; of a key given twice one would be dropped."""
    client, _, _ = site
    body = json.dumps(tiny_config("good.npz"))[:-1].encode() + added + b"}"
    answer = client.post("/api/jobs", data=body, content_type="application/json")
    assert answer.status_code == 400 and words in answer.get_json()["error"], answer.data[:300]
    assert client.get("/api/jobs").get_json()["jobs"] == []


@pytest.mark.parametrize("key", ["data_path", "data_dir"])
def test_a_nul_byte_in_a_data_path_is_a_400(site, key):
    client, _, _ = site
    answer = post_config(client, **{key: "good\x00.npz"})
    assert answer.status_code == 400
    assert f"{key} = 'good\\x00.npz' contains a NUL character" in answer.get_json()["error"]


@pytest.mark.parametrize(("data_path", "linked"), [("idx", "idx/train-images-idx3-ubyte.gz"),
                                                   ("sharded.npz", "sharded.shard-")])
def test_data_whose_files_link_out_of_the_data_root_is_refused(site, data_path, linked):
    client, _, root = site
    answer = post_config(client, data_path=data_path)
    assert answer.status_code == 403, answer.get_json()
    error = answer.get_json()["error"]
    assert f"data_path = {data_path!r}: {linked}" in error and str(root.resolve()) not in error
    assert "links to a file outside the server's data root" in error
    assert client.get("/api/jobs").get_json()["jobs"] == []


def test_sample_links_to_other_files_are_not_served(site):
    client, _, _ = site
    assert client.get(f"/api/runs/{RUN}/samples/{SAMPLE}").status_code == 200
    for linked in ("step_999999.png", "step_999998.png"):
        answer = client.get(f"/api/runs/{RUN}/samples/{linked}")
        assert answer.status_code == 404
        assert f"has no sample {linked!r}" in answer.get_json()["error"]
        assert b"not for the web" not in answer.data and b"generator" not in answer.data


BAD_CONFIG_VALUES = [
    {"image_size": 100_000}, {"batch_size": 100_000}, {"sample_rows": 10_000, "sample_columns": 10_000},
    {"latent_dim": 10**100}, {"steps": -1}, {"seed": 2**70}, {"name": "a\x00b"}, {"name": ".."},
    {"data_path": 7}, {"data_path": ""}, {"data_path": "/"}, {"data_path": "x" * 5000}, {"data_dir": "\x00"},
    {"generator": "dcgan"}, {"generator": {"choice": "dcgan", "widths": json.loads(nested(500))}},
]
BAD_BODIES = [b"", b"\xff\xfe", b"null", b'"text"', b"1e999", b"NaN", b'{"a": 1} tail', nested(100_000),
              b"{" * 5000, json.dumps({"generator": {"choice": "cgan"}}).encode()]
ROUTE_WALK = [
    ("get", "/?generate_sample=Sock"), ("get", "/?generate_sample=Bag&run=broken"), ("get", f"/?generate_sample=Bag&run={RUN}&n=x"),
    ("get", "/?generate_sample=%00"), ("get", "/?token=%00&x=1"),
    ("get", "/generate"), ("get", "/generate?run=broken"), ("get", "/generate?run=%00"),
    ("get", "/generate?run=" + "a" * 5000), ("get", f"/generate?run={RUN}&class=%00"),
    ("get", f"/generate?run={RUN}&n=99999999999999999999999"), ("get", f"/generate?run={RUN}&n=-0"),
    ("get", f"/generate?run={RUN}&seed=%00"),
    ("get", f"/generate?run={RUN}&format=%00"), ("get", f"/generate?run={RUN}&checkpoint=best"),
    ("get", "/generate?run=broken&checkpoint=best"),
    ("get", "/api/models?x=1"), ("get", "/api/jobs?x=1"), ("get", "/api/jobs/%00"), ("delete", "/api/jobs/nope"),
    ("get", "/api/jobs/" + "a" * 5000), ("get", "/api/runs/broken/samples/step_000001.png"),
    ("get", "/api/runs/%00/samples/" + SAMPLE), ("get", f"/api/runs/{RUN}/samples/%00"),
    ("get", f"/api/runs/{RUN}/samples/step_%00.png"), ("get", f"/api/runs/{RUN}/samples/step_..png"),
    ("get", f"/api/runs/{RUN}/samples/..%2Fconfig.json"), ("get", "/api/runs/nope/samples/" + SAMPLE),
    ("get", "/static/..%2F..%2Fapp.py"), ("get", "/static/%00"), ("get", "/nothing"),
    ("put", "/generate"), ("patch", "/api/jobs"), ("post", "/api/models"), ("delete", "/"),
    ("post", "/api/jobs?name=%00"), ("post", "/api/jobs?name=" + "a" * 5000), ("post", "/api/jobs?x=1"),
]


def test_every_route_answers_bad_input_with_a_json_4xx_and_no_traceback(site, caplog):
    client, _, _ = site
    answers = []
    with caplog.at_level(logging.WARNING):
        for method, path in ROUTE_WALK:
            answers.append((path, getattr(client, method)(path)))
        for changes in BAD_CONFIG_VALUES:
            answers.append((repr(changes)[:80], post_config(client, **changes)))
        for body in BAD_BODIES:
            answers.append((repr(body[:40]), client.post("/api/jobs", data=body, content_type="application/json")))
            upload = {"config": (io.BytesIO(body), "c.json")}
            answers.append(("upload " + repr(body[:40]), client.post("/api/jobs", data=upload)))
        answers.append(("form without file", client.post("/api/jobs", data={"config": "text"})))
        answers.append(("broken multipart", client.post(
            "/api/jobs", data=b"--x\r\nContent-Disposition: form-data; name=config\r\n\r\n{",
            content_type="multipart/form-data; boundary=x")))
    for what, answer in answers:
        assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.data[:300])
        assert answer.is_json, what
        assert set(answer.get_json()) <= {"error", "status", "allowed"}, what
        assert "Traceback" not in answer.get_data(as_text=True), what
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert client.get("/api/jobs").get_json()["jobs"] == []  # nothing bad was accepted
