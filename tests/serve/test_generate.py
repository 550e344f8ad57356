"""GET /generate, /?generate_sample=, /api/models, sample files and the page, through Flask's test client."""
from __future__ import annotations

import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

import models.generate
from models.data import FASHION_MNIST_CLASSES
from models.serve.app import create_app
from tests.serve.conftest import IMAGE_SIZE, RUN, RUN_STEPS, SEED

PADDING = 2  # models.images.image_grid: a 2-px gap around and between tiles


def decode(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


def tiles(grid: np.ndarray, n: int) -> np.ndarray:
    """Cut a square-ish grid of 16-px tiles back into (n, 16, 16)."""
    columns = int(np.ceil(np.sqrt(n)))
    step = IMAGE_SIZE + PADDING
    return np.stack([
        grid[PADDING + (i // columns) * step:][:IMAGE_SIZE, PADDING + (i % columns) * step:][:, :IMAGE_SIZE]
        for i in range(n)
    ])


@pytest.fixture(scope="module")
def generator(runs_dir):
    return models.generate.load_generator(runs_dir / RUN)


def test_models_lists_the_finished_run_with_its_shape_classes_and_config(client):
    answer = client.get("/api/models")
    assert answer.status_code == 200
    (model,) = answer.get_json()["models"]
    assert model["name"] == RUN
    assert model["image_shape"] == [IMAGE_SIZE, IMAGE_SIZE, 1]
    assert model["class_names"] == FASHION_MNIST_CLASSES
    assert model["conditional"] is True
    assert model["checkpoints"] == ["last"]
    assert model["best_metric"] is None
    assert (model["state"], model["steps"]) == ("finished", RUN_STEPS)
    assert model["config"]["generator"] == {"choice": "cgan", "architecture": "conv", "conditional": True}
    assert model["generator"] == model["config"]["generator"]
    assert (model["image_size"], model["num_classes"], model["total_steps"]) == ([IMAGE_SIZE] * 2, 10, RUN_STEPS)
    assert model["config"]["latent_dim"] == 8


def test_models_states_a_shapes_generators_architecture(runs_dir, data_root, tmp_path):
    """Issue 38: a shapes generator was listed as plain "dcgan"; the listing reads config.json's architecture."""
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir / RUN, runs / "vector")
    config = json.loads((runs / "vector" / "config.json").read_text())
    config["generator"] = {**config["generator"], "choice": "dcgan", "architecture": "shapes", "palette": 2,
                           "conditional": False}
    config.update(class_names=None, image_shape=[32, 32, 3])
    (runs / "vector" / "config.json").write_text(json.dumps(config))
    (model,) = create_app(runs, data_root).test_client().get("/api/models").get_json()["models"]
    assert model["generator"] == {"choice": "dcgan", "architecture": "shapes", "conditional": False}
    assert (model["image_size"], model["num_classes"], model["class_names"]) == ([32, 32], 0, None)
    assert (model["state"], model["steps"], model["total_steps"]) == ("finished", RUN_STEPS, RUN_STEPS)


def test_generate_returns_a_grid_of_the_generators_own_images(client, generator):
    answer = client.get(f"/generate?run={RUN}&class=Sneaker&n=9&seed={SEED}")
    assert answer.status_code == 200
    assert answer.mimetype == "image/png"
    assert answer.headers["X-Seed"] == str(SEED)
    assert answer.headers["X-Class-Index"] == str(FASHION_MNIST_CLASSES.index("Sneaker"))
    grid = decode(answer.data)
    assert grid.shape == (3 * (IMAGE_SIZE + PADDING) + PADDING,) * 2
    expected = generator.sample(9, seed=SEED, class_index=FASHION_MNIST_CLASSES.index("Sneaker"))[..., 0]
    np.testing.assert_array_equal(tiles(grid, 9), expected)


def test_same_seed_gives_the_same_bytes_and_another_seed_other_images(client):
    first = client.get(f"/generate?run={RUN}&class=Bag&n=4&seed=11").data
    again = client.get(f"/generate?run={RUN}&class=Bag&n=4&seed=11").data
    other = client.get(f"/generate?run={RUN}&class=Bag&n=4&seed=12").data
    assert first == again
    assert first != other


@pytest.mark.parametrize("spelling", ["T-shirt/top", "t-shirt/top", "0"])
def test_class_by_any_spelling_or_index_including_the_slash_name(client, spelling):
    answer = client.get("/generate", query_string={"run": RUN, "class": spelling, "n": 2, "seed": SEED})
    assert answer.status_code == 200
    assert answer.headers["X-Class-Index"] == "0"
    assert answer.headers["Content-Disposition"] == f'inline; filename="{RUN}-T-shirt-top-seed{SEED}.png"'
    by_name = client.get("/generate", query_string={"run": RUN, "class": "T-shirt/top", "n": 2, "seed": SEED})
    assert answer.data == by_name.data


def test_without_a_seed_a_random_one_is_chosen_and_reported(client):
    answer = client.get(f"/generate?run={RUN}&n=2")
    seed = int(answer.headers["X-Seed"])
    assert client.get(f"/generate?run={RUN}&n=2&seed={seed}").data == answer.data


def test_zip_holds_one_png_per_image_equal_to_the_grid_tiles(client):
    query = f"run={RUN}&class=Coat&n=5&seed={SEED}"
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/generate?{query}&format=zip").data))
    names = archive.namelist()
    assert names == [f"{RUN}-Coat-seed{SEED}-{index:03d}.png" for index in range(5)]
    singles = np.stack([decode(archive.read(name)) for name in names])
    np.testing.assert_array_equal(singles, tiles(decode(client.get(f"/generate?{query}").data), 5))


def test_old_generate_sample_route_returns_one_image_of_the_class(client, generator):
    answer = client.get(f"/?generate_sample=Sneaker&seed={SEED}")
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    image = decode(answer.data)
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE)
    np.testing.assert_array_equal(image, generator.sample(1, seed=SEED, class_index=7)[0, ..., 0])
    assert client.get("/?generate_sample=T-shirt/top").status_code == 200


def test_page_is_served_with_its_forms_and_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for element in ('id="generate-form"', 'id="class"', 'id="count"', 'id="seed"', 'id="job-form"'):
        assert element in html
    for asset in ("/static/gallery.css", "/static/gallery.js"):
        assert asset in html
        assert client.get(asset).status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ({"run": "nope"}, 404, "no finished run named 'nope'"),
        ({"class": "Sock"}, 400, "has no class 'Sock'"),
        ({"class": "10"}, 400, "has no class '10'"),
        ({"n": "0"}, 400, "n=0 is out of range; use a whole number from 1 to 256"),
        ({"n": "257"}, 400, "n=257 is out of range"),
        ({"n": "many"}, 400, "n='many' is not an integer"),
        ({"seed": "1.5"}, 400, "seed='1.5' is not an integer"),
        ({"n": "\uff11"}, 400, "n='\uff11' is not an integer"),  # a full-width 1, which int() reads
        ({"n": "1_0"}, 400, "n='1_0' is not an integer"),
        ({"seed": " 5"}, 400, "seed=' 5' is not an integer"),
        ({"seed": "-1"}, 400, "seed=-1 is out of range"),
        ({"format": "gif"}, 400, "format='gif' is not supported; use one of: png, zip"),
        ({"checkpoint": "best"}, 400, "has no 'best' checkpoint"),
        ({"checkpoint": "first"}, 400, "checkpoint='first' is not supported"),
        ({"clas": "Sneaker"}, 400, "unknown parameter 'clas'"),
        ({"n": ["1", "64"]}, 400, "parameter 'n' given more than once; give each once"),
    ],
)
def test_bad_generate_input_gets_a_json_error_saying_what_is_wrong(client, query, status, words):
    answer = client.get("/generate", query_string={"run": RUN, **query})
    assert answer.status_code == status
    assert answer.is_json
    assert words in answer.get_json()["error"]


def test_unknown_class_error_lists_the_allowed_classes(client):
    answer = client.get(f"/generate?run={RUN}&class=Sock").get_json()
    assert answer["allowed"] == FASHION_MNIST_CLASSES
    assert client.get("/?generate_sample=Sock").get_json()["allowed"] == FASHION_MNIST_CLASSES


def test_unknown_routes_and_methods_answer_json(client):
    missing = client.get("/nothing")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "no route /nothing"
    assert {"/", "/generate", "/api/models", "/api/jobs", "/api/jobs/<job_id>"} <= set(missing.get_json()["allowed"])
    wrong_method = client.put("/generate")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"] == "PUT is not allowed on /generate"
    assert "GET" in wrong_method.get_json()["allowed"]


@pytest.fixture
def counted_loads(runs_dir, data_root, monkeypatch, tmp_path):
    """A server on a copy of the run, and the list of load_generator calls it makes."""
    calls = []
    real = models.generate.load_generator
    monkeypatch.setattr(models.generate, "load_generator", lambda *args: calls.append(args) or real(*args))
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir / RUN, runs / RUN)
    return create_app(runs, data_root).test_client(), runs, calls


def test_a_run_is_loaded_once_and_again_only_when_its_generator_changes(counted_loads):
    client, runs, calls = counted_loads
    for seed in range(3):
        assert client.get(f"/generate?n=2&seed={seed}").status_code == 200
    assert len(calls) == 1
    exported = runs / RUN / "generator.keras"
    os.utime(exported, (exported.stat().st_atime, exported.stat().st_mtime + 10))
    assert client.get("/generate?n=2&seed=0").status_code == 200
    assert len(calls) == 2


def test_a_changed_status_is_listed_without_loading_the_generator_again(counted_loads):
    client, runs, calls = counted_loads
    assert client.get("/generate?n=2&seed=0").status_code == 200
    status = json.loads((runs / RUN / "status.json").read_text())
    (runs / RUN / "status.json").write_text(json.dumps({**status, "state": "running", "step": RUN_STEPS + 1}))
    (model,) = client.get("/api/models").get_json()["models"]
    assert (model["state"], model["steps"]) == ("running", RUN_STEPS + 1)
    assert client.get("/generate?n=2&seed=0").status_code == 200
    assert len(calls) == 1


def test_with_several_runs_a_request_must_name_one(runs_dir, data_root, tmp_path):
    runs = tmp_path / "runs"
    for name in (RUN, "copy"):
        shutil.copytree(runs_dir / RUN, runs / name)
    client = create_app(runs, data_root).test_client()
    answer = client.get("/generate?n=1")
    assert answer.status_code == 400
    assert answer.get_json()["allowed"] == ["copy", RUN]
    assert client.get("/generate?run=copy&n=1").status_code == 200
    assert [model["name"] for model in client.get("/api/models").get_json()["models"]] == ["copy", RUN]


def test_a_run_without_generator_keras_is_not_served(runs_dir, data_root, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir / RUN, runs / "unfinished", ignore=shutil.ignore_patterns("generator.keras"))
    client = create_app(runs, data_root).test_client()
    assert client.get("/api/models").get_json()["models"] == []
    answer = client.get("/generate?run=unfinished")
    assert answer.status_code == 404 and "no finished runs" in answer.get_json()["error"]


def test_sample_files_are_served_and_nothing_else(client, runs_dir):
    sample = f"step_{RUN_STEPS:06d}.png"
    answer = client.get(f"/api/runs/{RUN}/samples/{sample}")
    assert answer.status_code == 200
    assert answer.data == (runs_dir / RUN / "samples" / sample).read_bytes()
    for path, words in (
        (f"/api/runs/{RUN}/samples/config.json", "has no sample 'config.json'"),
        (f"/api/runs/{RUN}/samples/step_000099.png", "has no sample 'step_000099.png'"),
        (f"/api/runs/nope/samples/{sample}", "run 'nope' has no sample"),
        (f"/api/runs/.hidden/samples/{sample}", "run '.hidden' is not allowed"),
        (f"/api/runs/..%2F{RUN}/samples/{sample}", "no route"),
    ):
        answer = client.get(path)
        assert answer.status_code in (400, 404), path
        assert words in answer.get_json()["error"], path


def test_best_metric_is_read_from_the_metrics_log(runs_dir, data_root, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir / RUN, runs / RUN)
    config = json.loads((runs / RUN / "config.json").read_text())
    (runs / RUN / "config.json").write_text(json.dumps({**config, "metric_evaluate": "fid"}))
    with open(runs / RUN / "metrics.jsonl", "a") as metrics:
        for step, fid in ((2, 80.5), (3, 61.25), (4, 70.0)):
            metrics.write(json.dumps({"step": step, "fid": fid}) + "\n")
    (model,) = create_app(runs, data_root).test_client().get("/api/models").get_json()["models"]
    assert model["best_metric"] == {"name": "fid", "value": 61.25, "step": 3}
