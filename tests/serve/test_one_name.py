"""The server has one name, ``serve``: the package ``models/serve/`` (with the command behind ``python -m
models.serve``) and these tests; the package's old name (``web``) is gone from code and docs alike."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.serve.conftest import PROJECT_ROOT, trainer_env

# Spelled in two parts so that this file does not name what it looks for.
OLD_NAMES = ("models" + ".web", "models" + "/web")
SKIPPED_FOLDERS = (".git/", ".venv/")


def project_files() -> list[str]:
    """Tracked files and new ones git does not ignore: what the project is, without runs, data and caches."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=PROJECT_ROOT, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0")
            if name and not name.startswith(SKIPPED_FOLDERS) and (PROJECT_ROOT / name).is_file()]


def test_the_server_is_one_package_named_serve():
    assert importlib.util.find_spec("models" + ".web") is None
    spec = importlib.util.find_spec("models.serve")
    assert spec is not None and spec.submodule_search_locations is not None  # a package, not models/serve.py
    package = PROJECT_ROOT / "models" / "serve"
    assert {"__main__.py", "cli.py", "app.py", "jobs.py", "job_process.py"} <= {path.name for path in package.iterdir()}
    assert (package / "templates" / "index.html").is_file() and (package / "static" / "gallery.js").is_file()


def test_no_project_file_names_the_old_package():
    files = project_files()
    assert "models/serve/cli.py" in files  # the listing reaches the package itself
    naming = sorted(name for name in files
                    if any(old.encode() in (PROJECT_ROOT / name).read_bytes() for old in OLD_NAMES))
    assert naming == []


def test_python_m_models_serve_keeps_its_command_line():
    shown = subprocess.run([sys.executable, "-m", "models.serve", "--help"], cwd=PROJECT_ROOT, capture_output=True,
                           text=True, timeout=120, env=trainer_env())
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: python -m models.serve ")
    for flag in ("--runs", "--host", "--port", "--data-root", "--token", "--allowed-host", "--threads",
                 "--connection-limit", "--connection-timeout", "--max-queued-jobs"):
        assert flag in shown.stdout
    refused = subprocess.run([sys.executable, "-m", "models.serve", "--runs", "no-such-folder"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=120, env=trainer_env())
    assert refused.returncode == 2
    assert refused.stderr == ("models.serve: error: --runs no-such-folder: no such folder; create it or point at the "
                              "folder models.train writes runs to\n")
