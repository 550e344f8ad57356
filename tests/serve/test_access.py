"""The token check, the command line's refusals, and what the real server process (waitress) refuses and
says on every answer: Host names it was not bound to, cross-site changes, bodies not declared JSON, the
security headers, and no absolute path of its own in what it answers."""
from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
from urllib.parse import urlsplit

import pytest

from infra.errors import UserError
from models.serve import cli as serve_cli
from models.serve import wsgi_server
from models.serve.access_log import AccessLog
from models.serve.app import create_app
from tests.serve.conftest import RUN, loopback_session, start_server, stop_server, tiny_config

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
        serve_cli.main(["--runs", str(runs_dir), "--host", host])


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("10.0.0.1", False)])
def test_loopback_addresses(host, loopback):
    assert serve_cli.is_loopback(host) is loopback


def test_missing_runs_folder_and_busy_port_are_one_line_errors(runs_dir, tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        serve_cli.main(["--runs", str(tmp_path / "nope")])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{busy.getsockname()[1]}"):
            serve_cli.main(["--runs", str(runs_dir), "--port", str(busy.getsockname()[1])])


def test_help_explains_every_flag_with_an_example(capsys):
    with pytest.raises(SystemExit):
        serve_cli.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--runs", "--host", "--port", "--data-root", "--token", "LOGOGAN_TOKEN", "examples:",
                 "--allowed-host", "--threads", "--connection-limit", "--connection-timeout", "--max-queued-jobs",
                 "waitress", "default: 30", "Content-Type: application/json"):
        assert flag in text, flag


@pytest.mark.parametrize(("flags", "words"), [
    (["--threads", "0"], "--threads 0 is out of range; use 1 to 64"),
    (["--connection-timeout", "0"], "--connection-timeout 0 is out of range; use 1 to 3600"),
    (["--connection-limit", "100000"], "--connection-limit 100000 is out of range"),
    (["--max-queued-jobs", "0"], "--max-queued-jobs 0 is out of range"),
    (["--allowed-host", "evil/x"], "--allowed-host 'evil/x' is not a host name"),
])
def test_bad_server_limits_are_one_line_errors(runs_dir, flags, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(")):
        serve_cli.main(["--runs", str(runs_dir), *flags])


def test_a_token_in_the_query_is_redacted_in_the_access_log(runs_dir, data_root, caplog):
    app = create_app(runs_dir, data_root, token=TOKEN)
    listener = serve_cli.listening_socket("127.0.0.1", 0)
    server = wsgi_server.make_server(AccessLog(app), listener)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    session = loopback_session()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    queries = [f"?token={TOKEN}", f"?x=%22&token={TOKEN}", f"?tok%65n={TOKEN}&n=1", "?token=near-miss"]
    try:
        with caplog.at_level(logging.INFO, logger="models.serve.access"):
            answers = [session.get(f"{url}/api/models{query}", timeout=30).status_code for query in queries]
    finally:
        server.close()
        thread.join(timeout=10)
    assert answers == [200, 400, 400, 401]
    lines = [record.getMessage() for record in caplog.records if record.name == "models.serve.access"]
    assert len(lines) == len(queries)
    assert not any(TOKEN in line or "near-miss" in line for line in lines), lines
    assert '"GET /api/models?token=[redacted] HTTP/1.1" 200' in lines[0]
    assert "tok%65n=[redacted]&n=1" in lines[2] or "token=[redacted]&n=1" in lines[2]  # requests may unquote


@pytest.fixture(scope="module")
def served(tmp_path_factory, runs_dir, data_root):
    """``python -m models.serve`` as a process, over a copy of the run, answering to one extra name too."""
    folder = tmp_path_factory.mktemp("served")
    shutil.copytree(runs_dir / RUN, folder / "runs" / RUN)
    server, url = start_server(folder / "runs", data_root, folder / "serve.log", "--allowed-host", "logogan.test")
    try:
        yield url, folder
    finally:
        stop_server(server)


def test_the_server_is_waitress(served):
    url, _ = served
    answer = loopback_session().get(f"{url}/api/models", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Server"] == "LogoGAN"  # waitress names itself as told; werkzeug says Werkzeug/x


@pytest.mark.parametrize(("host", "status"), [
    ("evil.example", 400), ("evil.example:{port}", 400), ("127.0.0.1.evil.example:{port}", 400), ("", 400),
    ("127.0.0.1:1", 400), ("127.0.0.1:{port}", 200), ("localhost:{port}", 200), ("[::1]:{port}", 200),
    ("LOCALHOST:{port}", 200), ("logogan.test", 200), ("logogan.test:8443", 200),
])
def test_only_hosts_the_server_was_bound_to_or_allowed_are_served(served, host, status):
    url, _ = served
    port = urlsplit(url).port
    answer = loopback_session().get(f"{url}/api/models", headers={"Host": host.format(port=port)}, timeout=30)
    assert answer.status_code == status, answer.text
    if status == 400:
        error = answer.json()["error"]
        assert "is not served here" in error or "no Host header" in error
        assert f"127.0.0.1:{port}" in answer.json()["allowed"]
        assert "\n" not in answer.text.strip()


FORM_SHAPED = 'x={"generator": {"choice": "dcgan"}, "discriminator": {"choice": "dcgan"}, "trained_on":"x=y"}'


def test_a_cross_origin_form_shaped_post_is_refused(served):
    """The probe's attack: a page elsewhere posts text/plain (a "simple" request, no preflight)."""
    url, folder = served
    session = loopback_session()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        answer = session.post(f"{url}/api/jobs?name=evil", data=FORM_SHAPED, timeout=30,
                              headers={"Content-Type": content_type, "Origin": "http://evil.example",
                                       "Sec-Fetch-Site": "cross-site"})
        assert answer.status_code == 403, answer.text
        assert "refused" in answer.json()["error"]
        plain = session.post(f"{url}/api/jobs?name=evil", data=FORM_SHAPED, headers={"Content-Type": content_type},
                             timeout=30)
        assert plain.status_code == 415, plain.text
        assert plain.json() == {"error": plain.json()["error"], "status": 415, "allowed": ["application/json"]}
        assert "takes Content-Type: application/json" in plain.json()["error"]
    config = tiny_config("tiny.npz")
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Origin": f"http://localhost:{urlsplit(url).port + 1}"}):
        answer = session.post(f"{url}/api/jobs?name=evil", json=config, headers=headers, timeout=30)
        assert answer.status_code == 403, (headers, answer.text)
    cancel = session.delete(f"{url}/api/jobs/evil", headers={"Origin": "http://evil.example"}, timeout=30)
    assert cancel.status_code == 403
    assert session.get(f"{url}/api/jobs", timeout=30).json()["jobs"] == []
    assert not (folder / "runs" / "evil").exists()


def test_the_servers_own_page_may_post_json(served):
    url, _ = served
    answer = loopback_session().post(f"{url}/api/jobs", json=tiny_config("missing.npz"), timeout=30,
                                     headers={"Origin": url, "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 400  # past the guard, refused for its data path
    assert "no such file or folder under the data root" in answer.json()["error"]


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


@pytest.mark.parametrize("path", ["/", "/api/models", "/api/jobs", f"/generate?run={RUN}&n=1&seed=1", "/nothing",
                                  "/api/jobs/nope", "/static/gallery.js", "/static/gallery.css"])
def test_every_answer_carries_the_security_headers(served, path):
    url, _ = served
    answer = loopback_session().get(url + path, timeout=120)
    for key, value in SECURITY_HEADERS.items():
        assert answer.headers.get(key) == value, (key, answer.headers)
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    if path.startswith("/static/"):
        assert "no-store" not in answer.headers.get("Cache-Control", "")
    else:
        assert answer.headers["Cache-Control"] == "no-store"


def test_waitresss_own_refusals_are_json_with_the_headers_too(served):
    url, _ = served
    answer = loopback_session().post(f"{url}/api/jobs", data=b" " * (serve_cli.MAX_BODY_BYTES + 1), timeout=60,
                                     headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["status"] == 413 and "Request Entity Too Large" in answer.json()["error"]
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"


def test_api_answers_name_no_absolute_path(served, runs_dir, data_root):
    """The run was trained from an absolute data_path; the listing names its data relative to the data root."""
    url, folder = served
    session = loopback_session()
    listing = session.get(f"{url}/api/models", timeout=30)
    assert listing.status_code == 200
    assert str(folder) not in listing.text and str(data_root) not in listing.text
    assert json.loads((folder / "runs" / RUN / "config.json").read_text())["data_path"] == str(data_root / "tiny.npz")
    assert listing.json()["runs_dir"] == "runs"
    (model,) = listing.json()["models"]
    assert model["config"]["data_path"] == "tiny.npz"
    refused = session.post(f"{url}/api/jobs", json=tiny_config("../elsewhere.npz"), timeout=30)
    assert refused.status_code == 403 and str(data_root) not in refused.text
    assert "lies outside the server's data root" in refused.json()["error"]


@pytest.mark.parametrize("problem", ["missing", "a file"])
def test_a_data_root_that_is_not_a_folder_is_refused(runs_dir, tmp_path, problem):
    data_root = tmp_path / "data"
    if problem == "a file":
        data_root.write_text("")
    with pytest.raises(UserError, match=f"--data-root {data_root}: no such folder"):
        serve_cli.main(["--runs", str(runs_dir), "--data-root", str(data_root)])
