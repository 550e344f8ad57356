"""POST/GET/DELETE /api/jobs: configs checked before anything runs, real training runs, cancelling."""
from __future__ import annotations

import io
import json
import shutil

import pytest

from models.serve.app import MAX_CONFIG_BYTES, create_app
from models.serve.jobs import JobQueue
from models.run_folder import read_metrics
from tests.serve.conftest import RUN, loopback_session, start_server, stop_server, tiny_config, wait_for

TRAINING_TIMEOUT_S = 240


@pytest.fixture
def jobs_client(tmp_path, data_root):
    """An app over an empty runs folder of its own; its job queue is closed (jobs stopped) afterwards."""
    runs = tmp_path / "runs"
    runs.mkdir()
    queue = JobQueue(runs)
    yield create_app(runs, data_root, jobs=queue).test_client(), runs, queue
    queue.close()


@pytest.fixture(scope="module")
def checking_client(tmp_path_factory, runs_dir):
    """An app whose data root holds a dataset, a link out of the root, and one finished run named like RUN."""
    root = tmp_path_factory.mktemp("checking")
    (root / "data").mkdir()
    (root / "outside.npz").write_bytes(b"")
    (root / "data" / "escape.npz").symlink_to(root / "outside.npz")
    shutil.copytree(runs_dir / RUN, root / "runs" / RUN)
    queue = JobQueue(root / "runs")
    yield create_app(root / "runs", root / "data", jobs=queue).test_client(), root
    queue.close()


def wait_until_ended(client, job_id: str) -> dict:
    def ended():
        job = client.get(f"/api/jobs/{job_id}").get_json()
        return job if job["state"] not in ("queued", "running") else None

    return wait_for(ended, TRAINING_TIMEOUT_S, f"job {job_id!r} to end")


def config_with(**changes) -> dict:
    return {**tiny_config("tiny.npz"), **changes}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "no config: send a JSON config"),
        (b"{not json", 400, "request body is not valid JSON"),
        (b"[1, 2]", 400, "a config must be a JSON object, got list"),
        (json.dumps({"generator": {"choice": "gan"}}), 400, "'discriminator' is a required property"),
        (json.dumps(config_with(epoch=3)), 400, "unknown key epoch; allowed keys:"),
        (json.dumps(config_with(generator={"choice": "xgan"})), 400, 'generator.choice = "xgan" is not allowed'),
        (json.dumps(config_with(data_path=None)), 400, "data_path is required"),
        (json.dumps(config_with(data_path="../outside.npz")), 403, "lies outside the server's data root"),
        (json.dumps(config_with(data_path="/etc/hostname")), 403, "lies outside the server's data root"),
        (json.dumps(config_with(data_path="escape.npz")), 403, "lies outside the server's data root"),
        (json.dumps(config_with(data_path="s3://bucket/x.npz")), 400, "is not allowed here"),
        (json.dumps(config_with(data_path="missing.npz")), 400, "no such file or folder under the data root"),
        (json.dumps(config_with(data_path="fashion_mnist", data_dir="/tmp")), 403, "data_dir = '/tmp' lies outside"),
        (json.dumps(config_with(name="../evil")), 400, "name '../evil' is not allowed"),
        (json.dumps(config_with(name=RUN)), 409, f"a run or job named '{RUN}' already exists"),
    ],
)
def test_bad_configs_are_refused_with_what_is_wrong(checking_client, body, status, words):
    client, root = checking_client
    if "tiny.npz" in str(body):
        (root / "data" / "tiny.npz").touch()
    answer = client.post("/api/jobs", data=body, content_type="application/json")
    assert answer.status_code == status, answer.get_json()
    assert words in answer.get_json()["error"]
    assert client.get("/api/jobs").get_json()["jobs"] == []


def test_bad_uploads_names_and_job_ids_are_refused(checking_client):
    client, _ = checking_client
    for upload in ({"other": (io.BytesIO(b"{}"), "c.json")}, {"config": (io.BytesIO(b"{}"), "c.json")}):
        refused = client.post("/api/jobs", data=upload)  # a form's type: what a page elsewhere can send
        assert refused.status_code == 415 and "takes Content-Type: application/json" in refused.get_json()["error"]
    spaced = client.post("/api/jobs?name=two%20words", json=config_with())
    assert spaced.status_code == 400 and "name 'two words' is not allowed" in spaced.get_json()["error"]
    huge = client.post("/api/jobs", data=b" " * (MAX_CONFIG_BYTES + 1), content_type="application/json")
    assert huge.status_code == 413 and "larger than 1024 KiB" in huge.get_json()["error"]
    for method in (client.get, client.delete):
        missing = method("/api/jobs/nope")
        assert missing.status_code == 404 and "no job 'nope'" in missing.get_json()["error"]


def test_a_job_trains_to_the_end_and_its_run_is_then_served(jobs_client):
    client, runs, _ = jobs_client
    started = client.post("/api/jobs?name=plain", json=tiny_config("tiny.npz", conditional=False))
    assert started.status_code == 202
    assert started.headers["Location"] == "/api/jobs/plain"
    assert started.get_json()["state"] in ("queued", "running")

    waiting = client.post("/api/jobs?name=waiting", json=tiny_config("tiny.npz"))
    assert waiting.get_json()["state"] == "queued"  # one job at a time: this one waits for "plain"
    assert (runs / ".jobs" / "waiting.json").is_file()
    cancelled = client.delete("/api/jobs/waiting")
    assert (cancelled.status_code, cancelled.get_json()["state"]) == (200, "cancelled")
    assert not (runs / ".jobs" / "waiting.json").exists()  # a cancelled job leaves no files behind
    assert [job["id"] for job in client.get("/api/jobs").get_json()["jobs"]] == ["plain", "waiting"]

    job = wait_until_ended(client, "plain")
    assert job["state"] == "finished", job
    assert (job["step"], job["total_steps"], job["exit_code"]) == (4, 4, 0)
    last_log = [line for line in read_metrics(runs / "plain") if "d_loss" in line][-1]
    assert job["losses"] == {"d_loss": last_log["d_loss"], "g_loss": last_log["g_loss"]}
    assert job["sample_url"] == "/api/runs/plain/samples/step_000004.png"
    assert client.get(job["sample_url"]).data == (runs / "plain" / "samples" / "step_000004.png").read_bytes()
    assert not (runs / "waiting").exists()

    (model,) = client.get("/api/models").get_json()["models"]
    assert (model["name"], model["conditional"]) == ("plain", False)
    assert client.get("/generate?run=plain&n=4&seed=1").status_code == 200
    with_class = client.get("/generate?run=plain&class=Bag")
    assert with_class.status_code == 400 and "unconditional" in with_class.get_json()["error"]
    ended = client.delete("/api/jobs/plain")
    assert ended.status_code == 409 and "already ended (finished)" in ended.get_json()["error"]


def test_cancelling_a_running_job_stops_it_with_a_checkpoint_and_closing_stops_the_rest(jobs_client):
    client, runs, queue = jobs_client
    for name in ("long", "later"):
        assert client.post(f"/api/jobs?name={name}", json=tiny_config("tiny.npz", steps=100_000)).status_code == 202
    wait_for(lambda: client.get("/api/jobs/long").get_json()["step"] >= 2, TRAINING_TIMEOUT_S, "job 'long' to train")
    stopped = client.delete("/api/jobs/long")
    assert stopped.status_code == 200
    job = stopped.get_json()
    assert job["state"] == "interrupted", job
    assert 2 <= job["step"] < 100_000
    assert json.loads((runs / "long" / "status.json").read_text())["state"] == "interrupted"
    assert (runs / "long" / "checkpoints" / "last").is_dir()
    assert client.get("/api/models").get_json()["models"] == []  # interrupted: no generator.keras to serve

    # Shutting the server down stops the next job too, whether it got as far as training or not.
    wait_for(lambda: client.get("/api/jobs/later").get_json()["state"] == "running", 30, "job 'later' to start")
    # The stopped job's files are gone; the next one's log is opened as it starts (on the queue's thread, so
    # only once it runs: on a loaded machine this listing came too early, before later.log existed).
    assert sorted(path.name for path in (runs / ".jobs").iterdir()) == ["later.json", "later.log"]
    queue.close()
    later = client.get("/api/jobs/later").get_json()
    assert later["state"] in ("interrupted", "cancelled"), later
    refused = client.post("/api/jobs?name=after", json=tiny_config("tiny.npz"))
    assert refused.status_code == 503 and "shutting down" in refused.get_json()["error"]


def test_a_job_the_trainer_rejects_fails_with_the_trainers_message(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "broken.npz").write_bytes(b"not a zip")
    queue = JobQueue(tmp_path / "runs")
    client = create_app(tmp_path / "runs", tmp_path / "data", jobs=queue).test_client()
    try:
        assert client.post("/api/jobs?name=broken", json=tiny_config("broken.npz")).status_code == 202
        job = wait_until_ended(client, "broken")
    finally:
        queue.close()
    assert job["state"] == "failed", job
    assert job["exit_code"] != 0
    assert "broken.npz: not a readable .npz dataset" in job["message"]


def test_the_server_queues_at_most_max_queued_jobs_and_forgets_cancelled_ones(tmp_path, data_root):
    """Through the real server process: one job runs, one waits, the next is a 429; cancelled jobs' files go."""
    runs = tmp_path / "runs"
    runs.mkdir()
    server, url = start_server(runs, data_root, tmp_path / "serve.log", "--max-queued-jobs", "1")
    session = loopback_session()
    try:
        config = tiny_config("tiny.npz", steps=100_000)
        assert session.post(f"{url}/api/jobs?name=first", json=config, timeout=60).status_code == 202
        wait_for(lambda: session.get(f"{url}/api/jobs/first", timeout=30).json()["state"] == "running", 60,
                 "job 'first' to start")
        assert session.post(f"{url}/api/jobs?name=second", json=config, timeout=60).status_code == 202
        refused = session.post(f"{url}/api/jobs?name=third", json=config, timeout=60)
        assert refused.status_code == 429, refused.text
        assert refused.json() == {"status": 429, "error": "the job queue is full (1 waiting, the most this server "
                                  "queues: --max-queued-jobs); wait for one to start or cancel one"}
        assert sorted(path.name for path in (runs / ".jobs").iterdir()) == ["first.json", "first.log", "second.json"]

        for name in ("second", "first"):
            cancelled = session.delete(f"{url}/api/jobs/{name}", timeout=120)
            assert cancelled.status_code in (200, 202), cancelled.text
        wait_for(lambda: session.get(f"{url}/api/jobs/first", timeout=30).json()["state"] not in ("queued", "running"),
                 TRAINING_TIMEOUT_S, "job 'first' to stop")
        assert [job["state"] for job in session.get(f"{url}/api/jobs", timeout=30).json()["jobs"]][1] == "cancelled"
        assert list((runs / ".jobs").iterdir()) == []
        assert session.post(f"{url}/api/jobs?name=third", json=tiny_config("tiny.npz"), timeout=60).status_code == 202
    finally:
        stop_server(server)
