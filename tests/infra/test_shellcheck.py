"""shellcheck passes on every shell script in the project (*.sh and .ci/run)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.infra.cli_stub import PROJECT_ROOT


def shell_scripts() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.sh", ".ci/run"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return sorted(path for path in set(listed) if (PROJECT_ROOT / path).exists())


def test_every_shell_script_passes_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian/Ubuntu: apt-get install shellcheck)")
    scripts = shell_scripts()
    assert {"run-model.sh", "run-tests.sh", "setup-aws.sh", "setup-gcp.sh", ".ci/run"} <= set(scripts)
    result = subprocess.run(
        ["shellcheck", "--external-sources", *scripts], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
