"""What is in one or more input folders: their image files, class labels and credits.

A folder whose top level holds only class subfolders becomes a labelled dataset (``shoes/``, ``bags/`` ->
labels 0, 1 in name order); several such folders share one set of class names. The collection stage's
``manifest.csv`` (columns ``path``, ``licence`` and, when known, ``source_url``, ``artist``, ``title``;
``path`` relative to the manifest's folder) supplies per-image credits and licences. Text sidecars
(``.csv``, ``.json`` ...) are not images and are counted as ignored rather than tried.

A file's name in the dataset (``meta["sources"]``) is its path inside its folder; with several folders it
is prefixed with the folder as given (``logos/a.svg``, ``photos/b.png``), so names never collide.
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
    roots: list[Path]
    files: list[Path]
    file_roots: list[int]  # per file, the index of its folder in ``roots``
    labels: list[int] | None = None
    class_names: list[str] | None = None
    credits: dict[str, dict] = field(default_factory=dict)  # source name -> manifest columns
    ignored: dict[str, int] = field(default_factory=dict)  # suffix -> count of sidecar files

    @property
    def root(self) -> Path:
        """The input folder when there is one; with several, the first."""
        return self.roots[0]

    def relative(self, path: Path) -> str:
        """The file's source name: its path inside its folder, prefixed with the folder when there are several."""
        for root in self.roots:
            if path.is_relative_to(root):
                return _source_name(self.roots, root, path)
        raise ValueError(f"{path} is in none of the input folders")

    def source_names(self) -> list[str]:
        return [_source_name(self.roots, self.roots[index], path) for path, index in zip(self.files, self.file_roots)]


def _source_name(roots: list[Path], root: Path, path: Path) -> str:
    inside = path.relative_to(root).as_posix()
    return inside if len(roots) == 1 else f"{root.as_posix()}/{inside}"


def scan_collection(
    roots: str | Path | list[str | Path], labels: str = "auto", manifest: str | Path | None = None
) -> Collection:
    """The image files of one folder, or of several (given as a list) taken together as one dataset."""
    roots = [Path(root) for root in (roots if isinstance(roots, (list, tuple)) else [roots])]
    if labels not in LABEL_MODES:
        raise UserError(f"--labels {labels!r} is not one of {', '.join(LABEL_MODES)}")
    check_distinct_folders(roots)
    files, file_roots, ignored, labelled = [], [], Counter(), []
    for index, root in enumerate(roots):
        # Not only regular files: a pipe, a device or a broken link in the folder is listed, and skipped by the
        # cleaner as unreadable, rather than left out of every count.
        candidates = sorted(path for path in root.rglob("*") if not path.is_dir() and not _hidden(path.relative_to(root)))
        ignored.update(path.suffix.lower() for path in candidates if path.suffix.lower() in SIDECAR_SUFFIXES)
        found = [path for path in candidates if path.suffix.lower() not in SIDECAR_SUFFIXES]
        if not found:
            raise UserError(f"--input {root}: holds no image files")
        files += found
        file_roots += [index] * len(found)
        labelled.append(_labelled(root, found, labels))
    collection = Collection(roots=roots, files=files, file_roots=file_roots, ignored=dict(sorted(ignored.items())))
    if any(labelled) and not all(labelled):
        flat = roots[labelled.index(False)]
        raise UserError(
            f"--input {flat}: is not a folder of class subfolders, but --input {roots[labelled.index(True)]} is; "
            "give folders of one kind, or --labels none for an unlabelled dataset"
        )
    if all(labelled):
        top = [path.relative_to(roots[index]).parts[0] for path, index in zip(files, file_roots)]
        collection.class_names = sorted(set(top))
        position = {name: number for number, name in enumerate(collection.class_names)}
        collection.labels = [position[name] for name in top]
    if manifest is not None and not Path(manifest).is_file():
        raise UserError(f"--manifest {manifest}: no such file")
    for root in roots:
        found = Path(manifest) if manifest is not None else root / MANIFEST_NAME
        if found.is_file():
            credits = read_credits(found, root)
            collection.credits.update({_source_name(roots, root, root / key): row for key, row in credits.items()})
    return collection


def check_distinct_folders(roots: list[Path]) -> None:
    """Every --input an existing folder, none given twice and none inside another (its files would count twice)."""
    for root in roots:
        if not root.is_dir():
            raise UserError(f"--input {root}: no such folder")
    resolved = [root.resolve() for root in roots]
    for first in range(len(roots)):
        for second in range(len(roots)):
            if first != second and resolved[second].is_relative_to(resolved[first]):
                relation = "the same folder as" if resolved[first] == resolved[second] else "inside"
                raise UserError(f"--input {roots[second]}: is {relation} --input {roots[first]}; give each folder once")


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
