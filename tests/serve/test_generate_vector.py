"""GET /generate for a vector generator (format=svg, size, colours) and for every generator (seeds, truncation),
through Flask's test client."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

import models.generate
from models.config.limits import MAX_SEED
from models.serve.app import create_app
from tests.models.helpers import train_tiny_vector_run
from tests.serve.conftest import RUN


@pytest.fixture(scope="module")
def vector_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vector_serve")
    train_tiny_vector_run(folder / "runs", steps=2, name="marks")
    return folder / "runs", folder


@pytest.fixture(scope="module")
def vector_client(vector_runs):
    runs, data_root = vector_runs
    return create_app(runs, data_root).test_client()


def test_format_svg_sends_the_generators_own_svg_and_a_zip_for_several(vector_client, vector_runs):
    generator = models.generate.load_generator(vector_runs[0] / "marks")
    one = vector_client.get("/generate?run=marks&n=1&seed=4&format=svg")
    assert one.status_code == 200 and one.mimetype == "image/svg+xml"
    assert one.data.decode() == generator.svg(generator.latents(1, 4))[0]
    several = vector_client.get("/generate?run=marks&seeds=2-4&format=svg&size=200")
    assert several.status_code == 200 and several.mimetype == "application/zip"
    names = sorted(zipfile.ZipFile(io.BytesIO(several.data)).namelist())
    assert names == [f"marks-any-class-seeds-seed000{seed}.svg" for seed in (2, 3, 4)]
    document = zipfile.ZipFile(io.BytesIO(several.data)).read(names[1]).decode()
    assert document == generator.svg(generator.seed_latents([3]), size=200)[0] and 'width="200"' in document


def test_size_colours_seeds_and_truncation_reach_the_generator(vector_client, vector_runs):
    generator = models.generate.load_generator(vector_runs[0] / "marks")
    answer = vector_client.get("/generate?run=marks&seeds=7&size=48&truncation=0.5&colours=%23ff0000,%2300ff00,%230000ff")
    assert answer.status_code == 200 and answer.headers["X-Seed"] == "7"
    image = np.asarray(Image.open(io.BytesIO(answer.data)))
    expected = generator.generate(generator.seed_latents([7]), truncation=0.5, size=48,
                                  colours="#ff0000,#00ff00,#0000ff")[0]
    assert image.shape == (48, 48, 3) and np.array_equal(image, expected)
    assert tuple(image[0, 0]) == (255, 0, 0)  # the background is the first colour


def test_every_seed_the_server_may_report_can_be_asked_for_again_with_seeds(vector_client):
    # X-Seed is drawn from 0 to MAX_SEED; seeds= once stopped at nine digits.
    top = vector_client.get(f"/generate?run=marks&n=1&seed={MAX_SEED}")
    again = vector_client.get(f"/generate?run=marks&seeds={MAX_SEED}")
    assert top.status_code == again.status_code == 200 and top.headers["X-Seed"] == str(MAX_SEED)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(top.data))), np.asarray(Image.open(io.BytesIO(again.data))))


@pytest.mark.parametrize("query, status, start", [
    ("truncation=2", 400, "truncation='2' is not allowed; use a number from 0"),
    ("truncation=nan", 400, "truncation='nan' is not allowed"),
    ("truncation=0_5", 400, "truncation='0_5' is not allowed"),  # float() reads it as 5
    ("truncation=%D9%A0.5", 400, "truncation='\u0660.5' is not allowed"),  # an Arabic-Indic 0, which float() reads
    ("seeds=%EF%BC%91", 400, "seeds '\uff11': expected seeds and ranges"),  # a full-width 1
    ("seeds=4294967296", 400, "seeds '4294967296': expected seeds and ranges like 0-35 or 1,5,9 (whole numbers "
     "0-4294967295"),
    ("size=0", 400, "size=0 is out of range; use a whole number from 1 to 1024"),
    ("seeds=9-3", 400, "seeds '9-3': expected seeds and ranges"),
    ("seeds=0-9999", 400, "seeds '0-9999': more than 256 seeds"),
    ("seeds=1&n=3", 400, "seeds gives one image per seed"),
    ("colours=blurple", 400, "colours: 'blurple' is not a colour; use '#rrggbb', '#rgb' or a CSS name"),
    ("colours=%23ff000080,%2300ff00,%230000ff", 400, "colours: '#ff000080' is not a colour"),  # an alpha
    ("colours=%23ff0000", 400, "colours: 1 colour(s) for a palette of 3"),
    ("seeds=0-255&size=1024&format=zip", 400, "256 samples at size=1024 are 268,435,456 pixels; at most 16,777,216 "
     "are rendered per request: ask for at most 16 at this size, a smaller size, or format=svg"),
    ("n=17&size=1024", 400, "17 samples at size=1024 are 17,825,792 pixels"),
    ("colours=%23ff0000,%2300ff00,", 400, "colours: entry 3 of 3 is empty"),
])
def test_bad_look_parameters_are_one_line_400s(vector_client, query, status, start):
    answer = vector_client.get(f"/generate?run=marks&{query}")
    assert answer.status_code == status
    message = answer.get_json()["error"]
    assert message.startswith(start) and "\n" not in message


def test_the_pixel_budget_leaves_svgs_and_requests_within_it_alone(vector_client):
    assert vector_client.get("/generate?run=marks&n=16&size=1024&format=zip").status_code == 200  # at the budget
    many = vector_client.get("/generate?run=marks&n=256&size=1024&format=svg")  # an SVG's size is an attribute
    assert many.status_code == 200 and len(zipfile.ZipFile(io.BytesIO(many.data)).namelist()) == 256


def test_a_class_for_an_unconditional_run_names_the_parameter_that_gave_it(vector_client):
    for path, parameter in (("/generate?run=marks&class=1", "class"), ("/?run=marks&generate_sample=1",
                                                                       "generate_sample")):
        answer = vector_client.get(path)
        assert answer.status_code == 400
        assert answer.get_json()["error"] == f"run 'marks' is unconditional: leave {parameter} out"


@pytest.mark.parametrize("query, start", [
    ("format=svg", "format=svg: this generator draws pixels"),
    ("size=64", "size: this generator draws pixels"),
])
def test_a_pixel_generator_refuses_svg_and_size(client, query, start):
    answer = client.get(f"/generate?run={RUN}&n=2&{query}")
    assert answer.status_code == 400 and answer.get_json()["error"].startswith(start)


def test_seeds_and_truncation_work_for_a_pixel_generator_too(client, runs_dir):
    generator = models.generate.load_generator(runs_dir / RUN)
    answer = client.get(f"/generate?run={RUN}&class=Bag&seeds=3,5&truncation=0.8&format=zip")
    names = sorted(zipfile.ZipFile(io.BytesIO(answer.data)).namelist())
    assert names == ["fashion-Bag-seeds-seed0003.png", "fashion-Bag-seeds-seed0005.png"]
    tile = np.asarray(Image.open(zipfile.ZipFile(io.BytesIO(answer.data)).open(names[1])))
    expected = generator.generate(generator.seed_latents([5]), generator.class_index("Bag"), truncation=0.8)[0]
    assert np.array_equal(tile, expected[..., 0])
