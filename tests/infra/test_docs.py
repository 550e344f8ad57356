"""The guide cannot rot: README.md and docs/*.md are checked against the code they describe.

How a block is marked runnable: put ``<!-- runnable -->`` on the line right before a fenced code block.
In such a block, lines starting with ``$ `` are the commands (a line ending in ``\\`` continues on the next)
and every other line is the output they printed, which is not compared (timings and losses differ from run
to run); a block without any ``$ `` line is all commands. The runnable blocks of one file run in document
order, in one clean temporary folder, so a later block may use what an earlier one wrote:

- ``python`` is this interpreter (the project's ``.venv``), the project is on ``PYTHONPATH``, ``configs/`` is
  linked in, and the user cache folder is empty (``LOGOGAN_CACHE_DIR``);
- ``my_logos/`` holds a small folder of logos, PNGs and SVGs mixed, as a user's own would be;
- each block must exit with status 0 and print no traceback.

Mark only blocks that finish in seconds on 2 CPU cores (train with ``--steps 20``, not a schedule); the whole
file stays within a few minutes.

Cheaper checks cover everything else: every ``python -m MODULE --flag`` in a code block of these files names a
module of this project whose ``--help`` lists that flag; no path under the system's temporary folder; every
link to a picture or page exists, anchors included; the README stays a guide (at most 500 lines); and the configs
of the dated experiments under ``bench/configs/`` are valid configs.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE_MARK = "<!-- runnable -->"
PROJECT_PACKAGES = ("scraping", "preprocessing", "models", "evaluation", "infra")
README_MAX_LINES = 500
BLOCK_TIMEOUT_S = 300


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    runnable: bool
    text: str

    @property
    def where(self) -> str:
        name = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path.name
        return f"{name}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    """Fenced blocks of a markdown file, each with whether the line before it marks it runnable."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(\s*)(```+|~~~+)", lines[i])
        if not fence:
            i += 1
            continue
        start, marker = i, fence.group(2)
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(marker):
            body.append(lines[i][len(fence.group(1)):])
            i += 1
        previous = lines[start - 1].strip() if start > 0 else ""
        blocks.append(Block(path, start + 1, previous == RUNNABLE_MARK, "\n".join(body)))
        i += 1
    return blocks


def commands(block_text: str) -> list[str]:
    """The commands of a block: its ``$ `` lines, or every line when it has none; continuations joined."""
    lines = block_text.split("\n")
    prompted = any(line.startswith("$ ") for line in lines)
    result: list[str] = []
    continuing = False
    for line in lines:
        if continuing:
            result[-1] = result[-1][:-1].rstrip() + " " + line.strip()
        elif prompted and line.startswith("$ "):
            result.append(line[2:].strip())
        elif not prompted and line.strip():
            result.append(line.strip())
        else:
            continue
        continuing = result[-1].endswith("\\")
    return result


def module_flags(command: str) -> list[tuple[str, list[str]]]:
    """(module, flags) for each ``python -m MODULE ...`` of this project in a command line."""
    found = []
    for segment in re.split(r"\s(?:\|\|?|&&|;)\s", command):
        segment = segment.split(" # ")[0]
        match = re.search(r"(?:^|\s)python -m ([\w.]+)(.*)", segment)
        if not match or not match.group(1).startswith(PROJECT_PACKAGES):
            continue
        flags = [flag.split("=")[0] for flag in re.findall(r"(?:^|[\s\[])(--[a-z][\w-]*)", match.group(2))]
        found.append((match.group(1), flags))
    return found


def flag_problems(blocks: list[Block], help_text) -> list[str]:
    """One line per module that does not run or flag that its --help does not list."""
    wanted: dict[str, dict[str, str]] = {}
    for block in blocks:
        for command in commands(block.text):
            for module, flags in module_flags(command):
                seen = wanted.setdefault(module, {})
                for flag in flags:
                    seen.setdefault(flag, block.where)
                seen.setdefault("", block.where)
    with ThreadPoolExecutor(max_workers=2) as pool:
        helps = dict(zip(wanted, pool.map(help_text, wanted)))
    problems = []
    for module, flags in sorted(wanted.items()):
        text = helps[module]
        if text is None:
            problems.append(f"{flags['']}: python -m {module} --help fails")
            continue
        for flag, where in sorted(flags.items()):
            if flag and not re.search(re.escape(flag) + r"(?![\w-])", text):
                problems.append(f"{where}: python -m {module} --help does not list {flag}")
    return problems


def project_env(cache: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("KERAS_BACKEND", "LOGOGAN_VERBOSE")}
    env.update({
        "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        "LOGOGAN_CACHE_DIR": str(cache),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


def help_text(module: str) -> str | None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=project_env(ROOT / ".no-cache-used-by-help"))
    return result.stdout if result.returncode == 0 else None


def all_blocks() -> list[Block]:
    return [block for path in DOCS for block in code_blocks(path)]


# --- the extractor itself --------------------------------------------------------------------------------

def test_blocks_marks_and_commands_are_read_as_documented(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n<!-- runnable -->\n```\n$ python -m models.train --config a.json \\\n"
                    "    --steps 20\nrun folder: runs/x\n$ ls runs\n```\n\n```sh\npython -m models.serve --runs r/"
                    " [--port 5000] | tee log  # --not-a-flag\n```\n", encoding="utf-8")
    first, second = code_blocks(page)
    assert (first.runnable, first.line, second.runnable) == (True, 3, False)
    assert commands(first.text) == ["python -m models.train --config a.json --steps 20", "ls runs"]
    assert module_flags(commands(first.text)[0]) == [("models.train", ["--config", "--steps"])]
    assert module_flags(commands(second.text)[0]) == [("models.serve", ["--runs", "--port"])]
    assert module_flags("python -m pip install x; .venv/bin/python -m models.train --x") == []


def test_flag_check_names_a_flag_that_help_does_not_list(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```\npython -m models.train --steps 3 --no-such-flag\npython -m models.nothing --x\n```\n",
                    encoding="utf-8")
    helps = {"models.train": "usage: ... --steps N ...", "models.nothing": None}
    problems = flag_problems(code_blocks(page), helps.get)
    assert problems == ["page.md:1: python -m models.nothing --help fails",
                        "page.md:1: python -m models.train --help does not list --no-such-flag"]


# --- the guide against the code ---------------------------------------------------------------------------

def test_every_python_m_flag_in_the_docs_is_listed_by_its_modules_help():
    problems = flag_problems(all_blocks(), help_text)
    assert not problems, "\n".join(problems)


def test_readme_is_a_guide_and_has_runnable_blocks():
    lines = README.read_text(encoding="utf-8").split("\n")
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move details to docs/"
    assert lines[0] == "# LogoGAN"
    first_commands = commands(code_blocks(README)[0].text)
    assert [command.split()[0] for command in first_commands] == ["./run-model.sh", "./run-tests.sh"]
    assert any(block.runnable for block in code_blocks(README))


def test_no_path_in_the_system_temporary_folder():
    found = [f"{path.relative_to(ROOT)}:{n}" for path in DOCS
             for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1) if "/tmp" in line]
    assert not found, "paths under /tmp cannot be re-run by a reader: " + ", ".join(found)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_to_a_picture_or_page_exists_with_its_anchor():
    problems = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{path.relative_to(ROOT)}: {target} does not exist")
            elif anchor and linked.suffix == ".md":
                anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", linked.read_text(encoding="utf-8"), re.M)}
                if anchor not in anchors:
                    problems.append(f"{path.relative_to(ROOT)}: {target}: no heading with that anchor")
    assert not problems, "\n".join(problems)


def test_the_experiments_configs_are_valid_configs():
    from models import config

    files = sorted((ROOT / "bench" / "configs").glob("*/*.json"))
    assert len(files) >= 80
    experiments = (ROOT / "docs" / "experiments.md").read_text(encoding="utf-8")
    for named in re.findall(r"bench/configs/[\w.-]+/[\w.-]+\.json", experiments):
        assert (ROOT / named).is_file(), named
    for path in files:
        config.resolve(config.load_config(path), str(path))


# --- the runnable blocks ----------------------------------------------------------------------------------

def write_my_logos(folder: Path) -> None:
    """40 flat marks as PNGs and 8 as SVGs: boxes and discs in one colour on white, as logos are."""
    from PIL import Image, ImageDraw

    folder.mkdir()
    rng = random.Random(0)
    for i in range(40):
        image = Image.new("RGB", (64, 64), "white")
        draw = ImageDraw.Draw(image)
        colour = tuple(rng.randrange(200) for _ in range(3))
        low, high = rng.randrange(4, 20), rng.randrange(40, 60)
        box = [low, low + i % 7, high, high - i % 5]
        (draw.ellipse if i % 2 else draw.rectangle)(box, fill=colour)
        image.save(folder / f"mark_{i:02d}.png")
    for i in range(8):
        colour = "#%06x" % rng.randrange(1 << 24)
        (folder / f"vector_{i}.svg").write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="{colour}" '
            f'd="M{2 + i} 2h{18 - i}v{20 - i}H2z"/><circle cx="12" cy="12" r="{3 + i / 2}" fill="#fff"/></svg>',
            encoding="utf-8")


RUNNABLE = [(path, [b for b in code_blocks(path) if b.runnable]) for path in DOCS]


@pytest.mark.parametrize("path,blocks", [(p, b) for p, b in RUNNABLE if b],
                         ids=[str(p.relative_to(ROOT)) for p, b in RUNNABLE if b])
def test_runnable_blocks_run(path, blocks, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs")
    write_my_logos(work / "my_logos")
    env = project_env(tmp_path / "cache")
    for block in blocks:
        script = "set -euo pipefail\n" + "\n".join(commands(block.text)) + "\n"
        result = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                                timeout=BLOCK_TIMEOUT_S)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{block.where}: exit {result.returncode}\n{output[-3000:]}"
        assert "Traceback" not in output, f"{block.where}: printed a traceback\n{output[-3000:]}"
    if path == README:
        # the README's try-out trains, samples and scores a run on my_logos/
        assert json.loads((work / "runs" / "mylogos-try" / "status.json").read_text())["state"] == "finished"
        assert (work / "mylogos16.png").stat().st_size > 0
        assert len(list((work / "mylogos-samples").glob("*.png"))) == 64
        assert (work / "data" / "mylogos_56.npz").is_file()
