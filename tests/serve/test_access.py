"""The token check and the command line's refusals."""
from __future__ import annotations

import logging
import socket
import threading

import pytest
import requests
from werkzeug.serving import make_server

from infra.errors import UserError
from models import serve
from models.web.access_log import RedactingRequestHandler
from models.web.app import create_app
from tests.serve.conftest import RUN

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded(runs_dir, data_root):
    return create_app(runs_dir, data_root, token=TOKEN).test_client()


@pytest.mark.parametrize(
    "path", ["/", "/api/models", f"/generate?run={RUN}&n=1", "/api/jobs", "/static/gallery.js", "/?generate_sample=Bag"]
)
def test_every_route_needs_the_token(guarded, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        answer = guarded.get(path, headers=headers)
        assert answer.status_code == 401, headers
        assert "Authorization: Bearer" in answer.get_json()["error"]
    separator = "&" if "?" in path else "?"
    assert guarded.get(f"{path}{separator}token=wrong").status_code == 401
    assert guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get(f"{path}{separator}token={TOKEN}").status_code == 200


def test_the_page_passes_its_token_on_to_its_assets(guarded):
    html = guarded.get(f"/?token={TOKEN}").get_data(as_text=True)
    assert f"/static/gallery.js?token={TOKEN}" in html
    assert guarded.get(f"/static/gallery.css?token={TOKEN}").status_code == 200


def test_without_a_token_setting_no_token_is_asked_for(client):
    assert client.get("/api/models").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_binding_beyond_loopback_without_a_token_is_refused(runs_dir, host, monkeypatch):
    monkeypatch.delenv("LOGOGAN_TOKEN", raising=False)
    with pytest.raises(UserError, match=f"--host {host} would let anyone .* add --token"):
        serve.main(["--runs", str(runs_dir), "--host", host])


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("10.0.0.1", False)])
def test_loopback_addresses(host, loopback):
    assert serve.is_loopback(host) is loopback


def test_missing_runs_folder_and_busy_port_are_one_line_errors(runs_dir, tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        serve.main(["--runs", str(tmp_path / "nope")])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{busy.getsockname()[1]}"):
            serve.main(["--runs", str(runs_dir), "--port", str(busy.getsockname()[1])])


def test_help_explains_every_flag_with_an_example(capsys):
    with pytest.raises(SystemExit):
        serve.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--runs", "--host", "--port", "--data-root", "--token", "LOGOGAN_TOKEN", "examples:"):
        assert flag in text


def test_a_token_in_the_query_is_redacted_in_the_access_log(runs_dir, data_root, caplog):
    app = create_app(runs_dir, data_root, token=TOKEN)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=RedactingRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    url = f"http://127.0.0.1:{server.server_port}"
    queries = [f"?token={TOKEN}", f"?x=%22&token={TOKEN}", f"?tok%65n={TOKEN}&n=1", "?token=near-miss"]
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            answers = [session.get(f"{url}/api/models{query}", timeout=30).status_code for query in queries]
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert answers == [200, 400, 400, 401]
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert len(lines) == len(queries)
    assert not any(TOKEN in line or "near-miss" in line for line in lines), lines
    assert '"GET /api/models?token=[redacted] HTTP/1.1" 200' in lines[0]
    assert "tok%65n=[redacted]&n=1" in lines[2] or "token=[redacted]&n=1" in lines[2]


@pytest.mark.parametrize("problem", ["missing", "a file"])
def test_a_data_root_that_is_not_a_folder_is_refused(runs_dir, tmp_path, problem):
    data_root = tmp_path / "data"
    if problem == "a file":
        data_root.write_text("")
    with pytest.raises(UserError, match=f"--data-root {data_root}: no such folder"):
        serve.main(["--runs", str(runs_dir), "--data-root", str(data_root)])
