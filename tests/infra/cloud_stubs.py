"""Run setup-aws.sh / setup-gcp.sh against stub CLIs (see cli_stub.py) and read back what they called."""
from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

from tests.infra.cli_stub import PROJECT_ROOT, install_stubs

CALLER_IP = "203.0.113.7"  # TEST-NET-3: what the stub curl reports as this machine's public address
STUBBED = ["aws", "gcloud", "ssh", "scp", "curl"]


@dataclass
class CloudStubs:
    folder: Path
    env: dict

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    def respond(self, program: str, *rules: tuple[list[str], str, int]) -> None:
        """Answer ``program`` calls whose arguments contain all of a rule's words with its stdout and status."""
        responses = self._responses()
        responses[program] = [{"match": words, "stdout": stdout, "exit": status} for words, stdout, status in rules]
        (self.folder / "responses.json").write_text(json.dumps(responses))

    def _responses(self) -> dict:
        path = self.folder / "responses.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def clear(self) -> None:
        """Forget recorded calls and canned answers (curl keeps answering CALLER_IP)."""
        (self.folder / "calls.jsonl").unlink(missing_ok=True)
        (self.folder / "responses.json").unlink(missing_ok=True)
        self.respond("curl", ([], CALLER_IP + "\n", 0))

    def calls(self) -> list[dict]:
        path = self.folder / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def run(self, script: str, *args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(PROJECT_ROOT / script), *args],
            env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, umask=umask,
        )


def make_cloud_stubs(folder: Path) -> CloudStubs:
    bin_dir = install_stubs(folder, STUBBED)
    home = folder / "home"
    home.mkdir()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "SSH_RETRY_SECONDS": "0"}
    stubs = CloudStubs(folder, env)
    stubs.clear()
    return stubs


def step_of(program: str, args: list[str]) -> str:
    """One readable line per call: the CLI's command words (aws/gcloud), or the remote command (ssh)."""
    if program in ("aws", "gcloud"):
        return " ".join([program, *takewhile(lambda word: not word.startswith("-"), args)])
    if program == "ssh":
        return "ssh: " + args[-1]
    if program == "scp":
        return "scp " + args[-2]
    return program


def trace(calls: list[dict]) -> list[str]:
    return [step_of(call["program"], call["args"]) for call in calls]


def dry_run_trace(stdout: str) -> list[str]:
    """The printed commands of a --dry-run, read back the way a shell would."""
    steps = []
    for line in stdout.split("\n\n")[0].splitlines():
        if line.startswith("git archive"):
            line = line.split(" | ", 1)[1]
        words = shlex.split(line.split(" > ")[0])
        steps.append(step_of(words[0], words[1:]))
    return steps


def args_of(calls: list[dict], step: str) -> list[str]:
    """The arguments of the one call whose step line is ``step``."""
    matching = [call["args"] for call in calls if step_of(call["program"], call["args"]) == step]
    assert len(matching) == 1, f"expected one call {step!r}, got {len(matching)}"
    return matching[0]


def option(args: list[str], name: str) -> str:
    """The value after ``name`` (``--flag value``) or in ``--flag=value``."""
    for index, word in enumerate(args):
        if word == name:
            return args[index + 1]
        if word.startswith(name + "="):
            return word[len(name) + 1 :]
    raise AssertionError(f"{name} not among {args}")


# Arguments that a remote shell would split, redirect, substitute or expand if they were sent unquoted.
HOSTILE_ARGS = [
    "<a>", "--date", "x", "two words", "it's", 'say "hi"', "a;b", "$(touch pwned)", "`touch pwned`", ">out",
    "<in", "|", "&&", "*", "~", "", "new\nline", "-n", "=x", "back\\slash", "$HOME", "#comment", "tab\there",
]


def argv_on_the_vm(remote_command: str, shell: str, folder: Path) -> list[str]:
    """The arguments run-model.sh would get when ``shell -c`` runs ``remote_command`` in a VM's home.

    ``folder`` stands in for the home: it gets a ``logogan/run-model.sh`` that records its argv, and must
    hold nothing else afterwards (a redirect or a substituted command would leave a file).
    """
    recorder = folder / "logogan" / "run-model.sh"
    recorder.parent.mkdir(parents=True)
    recorder.write_text('#!/bin/sh\nfor word in "$@"; do printf "%s\\0" "$word"; done > "$HOME/argv"\n')
    recorder.chmod(0o755)
    subprocess.run([shell, "-c", remote_command], cwd=folder, env={"HOME": str(folder), "PATH": "/usr/bin:/bin"},
                   check=True, timeout=10)
    assert sorted(path.name for path in folder.iterdir()) == ["argv", "logogan"], list(folder.iterdir())
    return (folder / "argv").read_bytes().decode().split("\0")[:-1]
