"""Many generate requests at once through a real threaded server on 127.0.0.1: each model loads once, and
the same seed still gives the same bytes."""
from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from werkzeug.serving import make_server

import models.generate
from models.serve.app import create_app
from tests.serve.conftest import RUN

WORKERS = 8
ROUNDS = 4


@pytest.fixture
def server_url(runs_dir, data_root, tmp_path, monkeypatch):
    """A threaded werkzeug server on a free loopback port, over two copies of the run, with cold caches."""
    loads = []
    real = models.generate.load_generator
    monkeypatch.setattr(models.generate, "load_generator", lambda *args: loads.append(args[0].name) or real(*args))
    for name in ("left", "right"):
        shutil.copytree(runs_dir / RUN, tmp_path / "runs" / name)
    server = make_server("127.0.0.1", 0, create_app(tmp_path / "runs", data_root), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", loads
    server.shutdown()
    thread.join(timeout=10)


def test_parallel_requests_load_each_model_once_and_agree_with_each_other(server_url):
    url, loads = server_url
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    queries = [
        {"run": run, "class": klass, "n": 16, "seed": seed}
        for run in ("left", "right") for klass in ("Sneaker", "T-shirt/top") for seed in (1, 2)
    ] * ROUNDS

    def fetch(query):
        answer = session.get(f"{url}/generate", params=query, timeout=120)
        return answer.status_code, answer.content

    with ThreadPoolExecutor(WORKERS) as pool:
        answers = list(pool.map(fetch, queries))

    assert {status for status, _ in answers} == {200}
    by_query = {}
    for query, (_, body) in zip(queries, answers):
        by_query.setdefault((query["class"], query["seed"]), set()).add(body)
    # Both runs are copies of one run: same class and seed -> the same bytes, from every thread and run.
    assert all(len(bodies) == 1 for bodies in by_query.values())
    assert len({body for bodies in by_query.values() for body in bodies}) == len(by_query)
    assert sorted(loads) == ["left", "right"]
