"""What is in an input folder: its image files, their class labels, and their credits.

A folder whose top level holds only class subfolders becomes a labelled dataset (``shoes/``, ``bags/`` ->
labels 0, 1 in name order). The collection stage's ``manifest.csv`` (columns ``path``, ``licence`` and,
when known, ``source_url``, ``artist``, ``title``; ``path`` relative to the manifest's folder) supplies
per-image credits and licences. Text sidecars (``.csv``, ``.json`` ...) are not images and are counted
as ignored rather than tried.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from infra.csv_files import read_csv
from infra.errors import UserError

LABEL_MODES = ("auto", "folders", "none")
MANIFEST_NAME = "manifest.csv"
SIDECAR_SUFFIXES = {".csv", ".json", ".jsonl", ".txt", ".md", ".log", ".html", ".yaml", ".yml"}
CREDIT_COLUMNS = ("source_url", "licence", "artist", "title")


@dataclass
class Collection:
    root: Path
    files: list[Path]
    labels: list[int] | None = None
    class_names: list[str] | None = None
    credits: dict[str, dict] = field(default_factory=dict)  # relative path -> manifest columns
    ignored: dict[str, int] = field(default_factory=dict)  # suffix -> count of sidecar files

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def scan_collection(root: str | Path, labels: str = "auto", manifest: str | Path | None = None) -> Collection:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--input {root}: no such folder")
    if labels not in LABEL_MODES:
        raise UserError(f"--labels {labels!r} is not one of {', '.join(LABEL_MODES)}")
    manifest = Path(manifest) if manifest else root / MANIFEST_NAME
    candidates = sorted(path for path in root.rglob("*") if path.is_file() and not _hidden(path.relative_to(root)))
    ignored = Counter(path.suffix.lower() for path in candidates if path.suffix.lower() in SIDECAR_SUFFIXES)
    files = [path for path in candidates if path.suffix.lower() not in SIDECAR_SUFFIXES]
    if not files:
        raise UserError(f"--input {root}: holds no image files")
    collection = Collection(root=root, files=files, ignored=dict(sorted(ignored.items())))
    if _labelled(root, files, labels):
        collection.class_names = sorted({path.relative_to(root).parts[0] for path in files})
        index = {name: position for position, name in enumerate(collection.class_names)}
        collection.labels = [index[path.relative_to(root).parts[0]] for path in files]
    if manifest.is_file():
        collection.credits = read_credits(manifest, root)
    elif manifest != root / MANIFEST_NAME:
        raise UserError(f"--manifest {manifest}: no such file")
    return collection


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _labelled(root: Path, files: list[Path], mode: str) -> bool:
    at_top = [path for path in files if path.parent == root]
    folders = {path.relative_to(root).parts[0] for path in files if path.parent != root}
    if mode == "folders" and at_top:
        raise UserError(
            f"--labels folders: {root} has {len(at_top)} images outside class subfolders (e.g. {at_top[0].name}); "
            "move them into a subfolder or use --labels none"
        )
    if mode == "folders":
        return True
    return mode == "auto" and not at_top and len(folders) >= 2


def read_credits(manifest: Path, root: Path) -> dict[str, dict]:
    """Manifest rows keyed by image path relative to ``root``."""
    columns, rows = read_csv(manifest)
    missing = [column for column in ("path", "licence") if column not in columns]
    if missing:
        raise UserError(
            f"{manifest}: lacks column(s) {', '.join(missing)}; expected path, licence and optionally "
            f"{', '.join(column for column in CREDIT_COLUMNS if column != 'licence')}"
        )
    credits = {}
    for row in rows:
        if not row.get("path"):
            continue  # a short or blank row names no image
        image = (manifest.parent / row["path"]).resolve()
        try:
            key = image.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue  # listed in the manifest but outside the input folder: not part of this dataset
        credits[key] = {column: row[column] for column in CREDIT_COLUMNS if row.get(column)}
    return credits
