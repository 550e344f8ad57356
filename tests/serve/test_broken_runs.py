"""A run folder with a broken file is reported as broken; every other run is still served, and the broken
one is served again as soon as its file is fixed."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
import zipfile

import pytest

from models import run_folder
from models.run_folder import CHECKPOINTS_DIR, CONFIG_FILE, GENERATOR_FILE, STATUS_FILE
from models.serve.app import create_app
from tests.serve.conftest import RUN


def without_image_shape(original: bytes) -> bytes:
    config = json.loads(original)
    del config["image_shape"]
    return json.dumps(config).encode()


def zip_of_junk(original: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("junk.txt", "not a model")
    return buffer.getvalue()


BREAKAGES = {
    "config-not-json": (CONFIG_FILE, lambda original: b"{not json", "config.json is not valid JSON"),
    "config-a-list": (CONFIG_FILE, lambda original: b"[1, 2]", "config.json holds a JSON array, not an object"),
    "config-not-utf8": (CONFIG_FILE, lambda original: b"\xff\xfe{}", "config.json cannot be read"),
    # Python refuses an integer of over 4,300 digits with a bare ValueError: that was a traceback.
    "config-many-digits": (CONFIG_FILE, lambda original: re.sub(rb'"seed": \d+', b'"seed": ' + b"9" * 5000, original),
                           "config.json holds a number with 5000 digits; at most 40 are accepted"),
    "config-without-shape": (CONFIG_FILE, without_image_shape, "image_shape = null is not [height, width, channels]"),
    "generator-empty": (GENERATOR_FILE, lambda original: b"", "generator.keras is empty"),
    "generator-not-zip": (GENERATOR_FILE, lambda original: b"PK garbage", "generator.keras is not a Keras model"),
}


@pytest.fixture
def two_runs(runs_dir, data_root, tmp_path):
    """A good copy of the run, ``fashion``, beside one that is about to be broken, ``broken``."""
    runs = tmp_path / "runs"
    for name in (RUN, "broken"):
        shutil.copytree(runs_dir / RUN, runs / name)
    return create_app(runs, data_root).test_client(), runs / "broken"


def assert_served(client, name: str) -> None:
    answer = client.get(f"/generate?run={name}&n=2&seed=1")
    assert answer.status_code == 200, answer.get_json()
    assert answer.mimetype == "image/png"


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_run_is_named_with_its_problem_and_served_again_once_fixed(two_runs, breakage):
    client, broken = two_runs
    filename, damage, words = BREAKAGES[breakage]
    assert_served(client, "broken")  # loaded and cached while still good
    original = (broken / filename).read_bytes()
    (broken / filename).write_bytes(damage(original))

    listing = client.get("/api/models")
    assert listing.status_code == 200
    assert [model["name"] for model in listing.get_json()["models"]] == [RUN]
    (reported,) = listing.get_json()["broken"]
    assert reported["name"] == "broken" and words in reported["problem"]
    assert_served(client, RUN)
    refused = client.get("/generate?run=broken&n=2&seed=1")
    assert refused.status_code == 409
    assert refused.get_json()["error"].startswith("run 'broken' cannot be served: ")
    assert words in refused.get_json()["error"]

    (broken / filename).write_bytes(original)
    assert [model["name"] for model in client.get("/api/models").get_json()["models"]] == ["broken", RUN]
    assert client.get("/api/models").get_json()["broken"] == []
    assert_served(client, "broken")


def test_a_generator_that_keras_cannot_load_is_a_409_naming_the_file(two_runs):
    client, broken = two_runs
    shutil.rmtree(broken / CHECKPOINTS_DIR)  # without checkpoints, "last" is generator.keras itself
    original = (broken / GENERATOR_FILE).read_bytes()
    (broken / GENERATOR_FILE).write_bytes(zip_of_junk(original))

    refused = client.get("/generate?run=broken&n=2")
    assert refused.status_code == 409
    assert "run 'broken' cannot be served: its generator did not load" in refused.get_json()["error"]
    assert_served(client, RUN)

    (broken / GENERATOR_FILE).write_bytes(original)
    assert_served(client, "broken")


@pytest.mark.parametrize("status", [b'"running"', b"{cut", b"[]"])
def test_a_broken_status_file_is_a_warning_and_the_run_is_still_served(two_runs, status):
    client, broken = two_runs
    (broken / STATUS_FILE).write_bytes(status)
    models = {model["name"]: model for model in client.get("/api/models").get_json()["models"]}
    assert (models["broken"]["state"], models["broken"]["steps"]) == (None, None)
    (warning,) = models["broken"]["warnings"]
    assert warning.startswith("status.json ")
    assert models[RUN]["warnings"] == [] and models[RUN]["state"] == "finished"
    assert_served(client, "broken")


def test_odd_values_inside_a_valid_config_do_not_break_the_listing(two_runs):
    client, broken = two_runs
    config = json.loads((broken / CONFIG_FILE).read_text())
    config.update(discriminator="gan", metric_evaluate=["fid"], batch_size={"a": 1})
    (broken / CONFIG_FILE).write_text(json.dumps(config))
    with open(broken / "metrics.jsonl", "a") as metrics:
        metrics.write('[1]\n{"step": "x", "fid": 1}\n{"step": 3, "fid": "low"}\n{"cut": \n')
    listing = client.get("/api/models")
    assert listing.status_code == 200
    models = {model["name"]: model for model in listing.get_json()["models"]}
    assert models["broken"]["config"]["discriminator"] is None
    assert models["broken"]["best_metric"] is None
    assert_served(client, "broken")


@pytest.mark.parametrize("filename", [CONFIG_FILE, STATUS_FILE, "metrics.jsonl"])
def test_a_named_pipe_in_a_run_folder_never_hangs_the_server(two_runs, filename):
    """A pipe that nothing writes to blocks a plain open() for ever; every request lists the runs, so one such
    file would hang them all."""
    client, broken = two_runs
    (broken / filename).unlink(missing_ok=True)
    os.mkfifo(broken / filename)
    answers = {}
    listing = threading.Thread(target=lambda: answers.update(models=client.get("/api/models")), daemon=True)
    listing.start()
    listing.join(timeout=30)
    assert not listing.is_alive(), "the listing hung on the pipe"
    assert answers["models"].status_code == 200
    assert_served(client, RUN)
    if filename == CONFIG_FILE:
        (reported,) = answers["models"].get_json()["broken"]
        assert reported["name"] == "broken" and "config.json cannot be read" in reported["problem"]
        assert "not a regular file" in reported["problem"]


def test_metric_lines_that_python_cannot_read_are_passed_over(tmp_path):
    """A job's log tail is read while the server answers; a line cut by a crash, or one holding a number of
    thousands of digits (a bare ValueError from Python), is skipped, not a 500."""
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "d_loss": 0.5}\n{"step": 2, "d_loss": 0.4\n'
                                            '{"step": %s}\n{"step": 3, "d_loss": 0.3}\n' % ("9" * 5000))
    assert [record["step"] for record in run_folder.read_metrics(tmp_path)] == [1, 3]
