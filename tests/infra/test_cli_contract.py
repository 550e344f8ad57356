"""The error contract, walked across every command: bad input (a bad flag, a missing file, an output that cannot
be written, a folder where a file goes, an unreadable manifest) ends with exit status 2 and one line on stderr
naming the problem, never a traceback, and the model commands say so before Keras loads.

Each command's cases run in one subprocess that calls ``cli.run(main, argv)`` once per case, so the whole walk
costs one interpreter start per command.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from preprocessing.dataset import save_dataset
from tests.models.helpers import tiny_config, write_config
from tests.preprocessing.test_hostile_files import decompression_bomb, hostile_datasets
from tests.scraping.test_hostile_items import hostile_items
from tests.scraping.test_rasterize import hostile_svgs

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UNWRITABLE = "/proc/logogan"  # no one, not even root, can create files in /proc
COMMANDS = [
    "preprocessing.pack", "preprocessing.build", "preprocessing.clean", "preprocessing.dedupe", "preprocessing.augment",
    "preprocessing.contact_sheet", "preprocessing.simple_icons", "preprocessing.colour_logos", "preprocessing.s3",
    "scraping.commons", "scraping.gallery", "scraping.download", "scraping.rasterize", "scraping.split_grid",
    "scraping.iconify",
    "models.train", "models.generate", "models.evaluate",
    "bench/train_speed.py", "bench/preprocess_speed.py", "bench/scraping_local.py", "bench/shapes_render.py",
    "bench/vector_render.py", "bench/vector_fit.py", "bench/svg_sheet.py", "bench/mixed_logos.py",
    "bench/svg_fidelity.py", "bench/sample_stats.py", "bench/scene_prior.py",
]  # bench/fid_speed.py is left out: it imports Keras at the top, which alone takes longer than this whole walk

# Runs each argv list of argv[2] (JSON) through cli.run(main) of the module or script argv[1]; prints, per case,
# the exit status (or "traceback"), what went to stderr and whether Keras was loaded by then.
DRIVER = """
import contextlib, importlib, importlib.util, io, json, sys, traceback
from infra import cli
target = sys.argv[1]
if target.endswith(".py"):
    spec = importlib.util.spec_from_file_location("command", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
else:
    module = importlib.import_module(target)
results = []
for argv in json.loads(sys.argv[2]):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.run(module.main, argv)
        except SystemExit as exit:
            status = exit.code
        except BaseException:
            status = "traceback"
            stderr.write(traceback.format_exc())
    results.append({"status": status, "stderr": stderr.getvalue(), "keras": "keras" in sys.modules})
print(json.dumps(results))
"""


# Hostile files (issue 39): name -> (path, a piece of the one line that refuses it), filled in by ``inputs``.
HOSTILE: dict[str, dict[str, tuple[Path, str]]] = {}


def hostile_cases(kind: str, argv_for) -> list[tuple[list[str], str]]:
    return [(argv_for(str(path)), message) for path, message in HOSTILE[kind].values()]


def flag_help(command: str) -> str:
    return f"unrecognized arguments: --no-such-flag; see {command} --help"


def cases(paths: dict[str, Path]) -> dict[str, list[tuple[list[str], str]]]:
    """Per command: (argv, a piece of the one line it must print)."""
    p = {name: str(path) for name, path in paths.items()}
    npz_out = [
        (["--out", f"{UNWRITABLE}/x.npz"], f"--out {UNWRITABLE}/x.npz: cannot write in /proc"),
        (["--out", p["folder.npz"]], f"--out {p['folder.npz']}: is a folder"),
        (["--out", f"{p['file']}/x.npz"], f"{p['file']} is a file, not a folder"),
    ]
    dataset_in = ["--input", p["dataset"]]
    train = ["--config", p["config"], "--steps", "1", "--no-progress"]
    folder_in = ["--input", p["images"]]
    manifests = [
        (["--input", p["not-utf8"], "--out", p["out.npz"]], "manifest.csv: line 2 is not UTF-8 text (byte 0xff)"),
        (["--input", p["huge-field"], "--out", p["out.npz"]], "field larger than field limit"),
        (["--input", p["nul-path"], "--out", p["out.npz"]], "manifest.csv: line 2 holds a NUL character"),
    ]
    folder_out = [
        ([f"{UNWRITABLE}/x"], f"--out {UNWRITABLE}/x: cannot write in /proc"),
        ([p["file"]], f"--out {p['file']}: is a file"),
    ]
    return {
        "preprocessing.pack": [
            (["--no-such-flag"], "the following arguments are required: --input, --out; see python -m preprocessing"),
            ([*dataset_in, "--out", p["out.npz"], "--no-such-flag"], flag_help("python -m preprocessing.pack")),
            ([*dataset_in, "--out", p["out.npz"], "--shard-mb", "many"], "argument --shard-mb: invalid int value"),
            (["--input", p["missing"] + ".npz", "--out", p["out.npz"]], "missing.npz: no such dataset file"),
            *[([*dataset_in, *argv], message) for argv, message in npz_out],
            *hostile_cases("datasets", lambda path: ["--input", path, "--out", p["out.npz"]]),
        ],
        "preprocessing.build": [
            ([*folder_in, "--out", p["out.npz"], "--no-such-flag"], flag_help("python -m preprocessing.build")),
            (["--input", p["missing"], "--out", p["out.npz"]], "missing: no such folder"),
            *[([*folder_in, *argv], message) for argv, message in npz_out],
            *manifests,
        ],
        "preprocessing.clean": [
            ([*folder_in, "--out", p["out.npz"], "--fit", "stretch"], "argument --fit: invalid choice: 'stretch'"),
            ([*folder_in, "--out", p["out.npz"], "--max-aspect", "nan"], "--max-aspect nan must be 1 or more"),
            *[([*folder_in, *argv], message) for argv, message in npz_out],
            *manifests,
        ],
        "preprocessing.dedupe": [
            ([*dataset_in, "--out", p["out.npz"], "--no-such-flag"], flag_help("python -m preprocessing.dedupe")),
            (["--input", p["missing"] + ".npz", "--out", p["out.npz"]], "no such dataset file"),
            *[([*dataset_in, *argv], message) for argv, message in npz_out],
        ],
        "preprocessing.augment": [
            ([*dataset_in, "--out", p["out.npz"]], "the following arguments are required: --augment-to"),
            *[([*dataset_in, "--augment-to", "4", *argv], message) for argv, message in npz_out],
        ],
        "preprocessing.contact_sheet": [
            ([*dataset_in, "--no-such-flag"], flag_help("python -m preprocessing.contact_sheet")),
            (["--input", p["missing"] + ".npz"], "no such dataset file"),
            ([*dataset_in, "--out", f"{UNWRITABLE}/x.png"], f"--out {UNWRITABLE}/x.png: cannot write in /proc"),
            ([*dataset_in, "--out", p["folder.png"]], "is a folder"),
        ],
        "preprocessing.simple_icons": [
            (["--no-such-flag"], flag_help("python -m preprocessing.simple_icons")),
            *[(["--limit", "1", *argv], message) for argv, message in npz_out],
        ],
        "preprocessing.colour_logos": [  # refused before any registry is asked (nothing listens on port 9)
            (["--registry", "http://127.0.0.1:9", "--no-such-flag"], flag_help("python -m preprocessing.colour_logos")),
            (["--registry", "http://127.0.0.1:9", "--set", "logos"], "--set logos: held out for evaluation"),
            *[(["--registry", "http://127.0.0.1:9", *argv], message) for argv, message in npz_out],
        ],
        "preprocessing.s3": [
            (["sync", "a", "b"], "argument action: invalid choice: 'sync'"),
            (["pull", "s3://bucket/x.npz", f"{UNWRITABLE}/x/"], f"DST {UNWRITABLE}/x: cannot write in /proc"),
            (["push", p["missing"], "s3://bucket/in/"], "no such file or folder to push"),
            (["clean", "s3://bucket/x", "--older-than", "-1"], "--older-than: '-1' is not a number of hours >= 0"),
            (["clean", "s3://bucket/x", "--older-than", "nan"], "--older-than: 'nan' is not a number of hours >= 0"),
            (["clean", "bucket/x"], "'bucket/x' is not an S3 URL"),
            (["clean", "s3://bucket/x", "extra"], "clean takes one S3 URL; got an extra argument 'extra'"),
            (["push", p["missing"], "s3://bucket/in/", "--older-than", "1"], "--older-than goes with clean, not push"),
            (["clean", "s3://bucket/x", "--incomplete"], "--incomplete goes with ls, not clean"),
        ],
        "scraping.commons": [
            (["--category", "Logos", "--no-such-flag"], flag_help("python -m scraping.commons")),
            (["--category", "Logos", "-o", f"{UNWRITABLE}/items.csv"], f"--output {UNWRITABLE}/items.csv: cannot"),
            (["--category", "Logos", "-o", p["folder.csv"]], "is a folder"),
        ],
        "scraping.gallery": [
            (["--start-url", "http://127.0.0.1:9/", "-o", f"{UNWRITABLE}/items.csv"], "cannot write in /proc"),
            (["--start-url", "http://127.0.0.1:9/", "-o", p["folder.csv"]], "is a folder"),
        ],
        "scraping.download": [
            (["--items", p["items"], "--out", p["downloads"], "--no-such-flag"], flag_help("python -m scraping.download")),
            (["--items", p["missing"] + ".csv", "--out", p["downloads"]], "missing.csv does not exist"),
            *[(["--items", p["items"], "--out", *argv], message) for argv, message in folder_out],
            (["--items", p["items-not-utf8"], "--out", p["downloads"]], "line 2 is not UTF-8 text"),
            (["--items", p["items-huge-field"], "--out", p["downloads"]], "field larger than field limit"),
            (["--items", p["items-nul"], "--out", p["downloads"]], "line 2 holds a NUL character"),
            (["--items", p["items"], "--out", p["bad-manifest"]], "manifest.csv: line 2 is not UTF-8 text"),
            (["--items", p["items"], "--out", p["downloads"], "--deadline", "0"], "--deadline 0.0 must be more than 0"),
            (["--items", p["items"], "--out", p["downloads"], "--timeout", "nan"],
             "--timeout nan must be more than 0 and at most 3600 seconds"),
            *hostile_cases("items", lambda path: ["--items", path, "--out", p["out.npz"]]),
        ],
        "scraping.rasterize": [
            (["--path", p["svgs"], "--size", "big"], "argument --size: invalid int value: 'big'"),
            (["--path", p["missing"]], "is not a folder of .svg files"),
            *[(["--path", p["svgs"], "--out", *argv], message) for argv, message in folder_out],
            *hostile_cases("svgs", lambda path: ["--path", path, "--out", p["out.npz"], "--time-limit", "1"]),
        ],
        "scraping.split_grid": [
            (["--image", p["sheet"], "--cols", "two", "--rows", "2"], "argument --cols/--col: invalid int value"),
            (["--image", p["missing"] + ".png", "--cols", "2", "--rows", "2"], "missing.png does not exist"),
            *[(["--image", p["sheet"], "--cols", "2", "--rows", "2", "--out", *argv], message)
              for argv, message in folder_out],
            (["--image", p["bomb.png"], "--cols", "2", "--rows", "2", "--out", p["out.npz"]],
             f"--image {p['bomb.png']} is not a readable image (decompression bomb"),
        ],
        "scraping.iconify": [  # refused before any registry is asked (nothing listens on port 9)
            (["--set", "devicon", "--out", p["downloads"], "--no-such-flag"], flag_help("python -m scraping.iconify")),
            (["--set", "Dev/icon", "--out", p["downloads"]], "--set 'Dev/icon': expected an Iconify set name"),
            (["--set", "logos", "--out", p["downloads"]], "--set logos: held out for evaluation"),
            (["--set", "devicon", "--out", p["downloads"], "--registry", "ftp://x"], "--registry 'ftp://x': expected"),
            (["--set", "devicon", "--out", p["downloads"], "--timeout", "inf"],
             "--timeout inf must be more than 0 and at most 3600 seconds"),
            *[(["--set", "devicon", "--registry", "http://127.0.0.1:9", "--out", *argv], message)
              for argv, message in folder_out],
        ],
        "models.train": [  # one step each, so that a command that fails to refuse still ends soon
            ([*train, "--no-such-flag"], flag_help("python -m models.train")),
            ([*train, "--name", ".."], "--name '..': a run name must be one folder name"),
            ([*train, "--name", "a/b"], "--name 'a/b': a run name must be one folder name"),
            ([*train, "--runs-dir", f"{UNWRITABLE}/runs"], "--runs-dir /proc/logogan/runs: cannot write in /proc"),
            ([*train, "--runs-dir", p["file"]], f"--runs-dir {p['file']}: is a file"),
            (["--config", p["missing"] + ".json"], "missing.json"),
            (["--config", p["labels-config"], "--steps", "1", "--no-progress", "--runs-dir", p["out.npz"]],
             "labels run 0..7 but there are 2 class names, so 0..1 are allowed"),
        ],
        "models.generate": [
            (["--run", p["missing"], "--out", "x.png", "--no-such-flag"], flag_help("python -m models.generate")),
            (["--run", p["missing"], "--out", f"{UNWRITABLE}/x.png"], f"--out {UNWRITABLE}/x.png: cannot write"),
            (["--run", p["missing"], "--out", p["folder.png"]], "is a folder"),
            (["--run", p["missing"], "--out", f"{p['file']}/samples"], f"{p['file']} is a file, not a folder"),
            (["--run", p["missing"], "--out", p["out.png"]], "not a run folder"),
            (["--run", p["missing"], "--seeds", "3-1", "--out", "x"], "--seeds '3-1': expected seeds and ranges"),
            (["--run", p["missing"], "--truncation", "2", "--out", "x"], "--truncation 2.0: allowed 0"),
            (["--run", p["missing"], "--format", "svg", "--out", "x.png"], "--format svg writes one SVG per sample"),
            (["--run", p["missing"], "--seeds", "1", "--seed", "2", "--out", "x"], "--seeds gives one image per seed"),
        ],
        "models.evaluate": [
            (["--run", p["missing"], "--no-such-flag"], flag_help("python -m models.evaluate")),
            (["--run", p["missing"]], "no config.json there"),
        ],
        "bench/train_speed.py": [(["--no-such-flag"], flag_help("python bench/train_speed.py"))],
        "bench/preprocess_speed.py": [(["--count", "many"], "argument --count: invalid int value")],
        "bench/scraping_local.py": [(["--no-such-flag"], flag_help("python bench/scraping_local.py"))],
        "bench/shapes_render.py": [(["--parts", "0"], "--parts: 0; expected a positive whole number"),
                                   (["--no-such-flag"], flag_help("python bench/shapes_render.py"))],
        "bench/vector_render.py": [(["--batch", "0"], "--batch: 0; expected a positive whole number"),
                                   (["--no-such-flag"], flag_help("python bench/vector_render.py"))],
        "bench/vector_fit.py": [(["--data", p["missing"], "--count", "0"], "--count: 0; expected a positive"),
                                (["--data", "x.npz", "--no-such-flag"], flag_help("python bench/vector_fit.py"))],
        "bench/svg_sheet.py": [(["--svg", p["missing"], "--out", "x.png"], "no .svg files there"),
                               (["--svg", p["missing"], "--size", "4", "--out", "x.png"], "--size 4 / --columns 4"),
                               (["--svg", p["missing"], "--out", f"{UNWRITABLE}/x.png"], "cannot write")],
        "bench/mixed_logos.py": [(["--out", "x", "--count", "1"], "--count 1: allowed 2 to 3000"),
                                 (["--out", f"{UNWRITABLE}/logos"], "cannot"),
                                 (["--out", "x", "--no-such-flag"], flag_help("python bench/mixed_logos.py"))],
        "bench/svg_fidelity.py": [(["--count", "0"], "--count: 0; expected a positive whole number"),
                                  (["--no-such-flag"], flag_help("python bench/svg_fidelity.py"))],
        "bench/sample_stats.py": [([p["missing"], "--data", "x.npz"], "no results.json here"),
                                  (["x", "--data", "x.npz", "--count", "1"], "--count: 1; expected a whole number"),
                                  (["x", "--data", "x.npz", "--no-such-flag"],
                                   flag_help("python bench/sample_stats.py"))],
        "bench/scene_prior.py": [(["--data", p["missing"], "--candidates", "0"], "--candidates: 0; expected a positive"),
                                 (["--data", p["missing"], "--count", "-1"], "--count: -1; expected a whole number"),
                                 (["--data", "x.npz", "--no-such-flag"], flag_help("python bench/scene_prior.py"))],
    }


def write_manifest_folder(folder: Path, manifest: bytes) -> Path:
    folder.mkdir()
    Image.new("RGB", (16, 16), "red").save(folder / "a.png")
    (folder / "manifest.csv").write_bytes(b"path,licence\n" + manifest)
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contract")
    paths = {"missing": root / "missing", "out.npz": root / "out" / "new.npz", "out.png": root / "out" / "new.png"}
    x = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    paths["dataset"] = save_dataset(root / "dataset.npz", x)
    paths["file"] = root / "plain.txt"
    paths["file"].write_text("a file, not a folder")
    for name in ("folder.npz", "folder.png", "folder.csv", "downloads"):
        paths[name] = root / name
        paths[name].mkdir()
    paths["images"] = root / "images"
    paths["images"].mkdir()
    for colour in ("red", "blue"):
        Image.new("RGB", (16, 16), colour).save(paths["images"] / f"{colour}.png")
    paths["not-utf8"] = write_manifest_folder(root / "not-utf8", b"a.png,CC0 \xff\xfe\n")
    paths["huge-field"] = write_manifest_folder(root / "huge-field", b"a.png," + b"x" * 200_000 + b"\n")
    paths["nul-path"] = write_manifest_folder(root / "nul-path", b"a\x00.png,CC0\n")
    url = b"https://example.org/a.png"
    for name, row in (("items", url), ("items-not-utf8", url + b"\xff"), ("items-huge-field", url + b"x" * 200_000),
                      ("items-nul", url + b"\x00")):
        paths[name] = root / f"{name}.csv"
        paths[name].write_bytes(b"url\n" + row + b"\n")
    paths["bad-manifest"] = root / "bad-manifest"
    paths["bad-manifest"].mkdir()
    (paths["bad-manifest"] / "manifest.csv").write_bytes(b"path,source_url\n\xff\n")
    paths["svgs"] = root / "svgs"
    paths["svgs"].mkdir()
    (paths["svgs"] / "square.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"><rect '
                                              'width="4" height="4"/></svg>')
    paths["sheet"] = root / "sheet.png"
    Image.new("RGB", (32, 32), "white").save(paths["sheet"])
    paths["config"] = root / "config.json"
    write_config(paths["config"], tiny_config(paths["dataset"]))
    paths["bomb.png"] = decompression_bomb(root / "bomb.png")
    HOSTILE["datasets"] = hostile_datasets(root / "hostile-datasets")
    HOSTILE["items"] = hostile_items(root / "hostile-items")
    paths["labels-config"] = root / "labels-config.json"
    write_config(paths["labels-config"], tiny_config(HOSTILE["datasets"]["labels-out-of-range"][0]))
    HOSTILE["svgs"] = hostile_svgs(root / "hostile-svgs")
    return paths


def command_env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           # S3 commands must fail on the local checks; should one reach out, it finds nothing listening.
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    env.pop("LOGOGAN_CONTACT", None)
    return env


@pytest.fixture(scope="module")
def outcomes(inputs, tmp_path_factory) -> dict[str, list[tuple[list[str], str, dict]]]:
    """Every command's cases, run; commands in parallel, each in its own interpreter."""
    workdir = tmp_path_factory.mktemp("cwd")
    table = cases(inputs)
    assert list(table) == COMMANDS

    def run(command: str):
        """The command's (argv, message, outcome) triples, or why they could not be had."""
        argvs = [argv for argv, _ in table[command]]
        target = str(PROJECT_ROOT / command) if command.endswith(".py") else command
        try:
            result = subprocess.run([sys.executable, "-c", DRIVER, target, json.dumps(argvs)], cwd=workdir,
                                    env=command_env(), capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            return f"{command}: its cases did not finish within 180 s"
        if result.returncode != 0:
            return f"{command}: the driver failed:\n{result.stderr[-3000:]}"
        outcomes = json.loads(result.stdout.splitlines()[-1])
        return [(argv, message, outcome) for (argv, message), outcome in zip(table[command], outcomes)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(table, pool.map(run, table)))


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_input_is_one_line_and_status_2(command, outcomes, inputs):
    assert not isinstance(outcomes[command], str), outcomes[command]
    problems = []
    for argv, message, outcome in outcomes[command]:
        lines = outcome["stderr"].strip().splitlines()
        keeps_contract = (outcome["status"] == 2 and len(lines) == 1 and ": error: " in lines[0]
                          and message in lines[0] and not (command.startswith("models.") and outcome["keras"]))
        if not keeps_contract:
            problems.append(f"{command} {' '.join(argv)[:300]}\n  expected one line with {message!r}; got status "
                            f"{outcome['status']}, Keras loaded: {outcome['keras']}, stderr:\n{outcome['stderr'][-1500:]}")
    assert not problems, "\n\n".join(problems)
    assert not inputs["out.npz"].parent.exists()  # nothing was written where a refused command was pointed


def test_a_bad_flag_is_one_line_from_the_shell():
    result = subprocess.run([sys.executable, "-m", "preprocessing.pack", "--input", "a.npz", "--out", "b.npz",
                             "--shard-mb", "lots"], cwd=PROJECT_ROOT, env=command_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == ("preprocessing.pack: error: argument --shard-mb: invalid int value: 'lots'; see python -m "
                             "preprocessing.pack --help\n")
