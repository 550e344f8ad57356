"""Fetch Iconify JSON icon sets from the npm registry and write one standalone SVG per icon, with credits.

    python -m scraping.iconify --set devicon --set skill-icons --out collected/iconify

Each set ``NAME`` is the npm package ``@iconify-json/NAME`` (pin one with ``NAME@VERSION``). The package's
metadata comes from the registry, then its tarball, whose bytes must match the registry's ``dist.integrity``
(SHA-512, else ``dist.shasum``) before anything in it is used. Tarballs are kept in the user cache
(``infra.user_cache``, subfolder ``iconify``), so a second run fetches nothing and a run with the registry
unreachable uses the version it last saw. ``icons.json`` is read from the tarball in memory: every member must
pass tarfile's ``data_filter`` (no absolute paths, no ``..``, no links out, no devices) and stay under size
limits, and nothing is extracted to disk.

Each icon becomes ``OUT/<set>/<icon>.svg``: Iconify's body in an ``<svg>`` with the icon's width, height and
viewBox (the set's ``left``/``top``/``width``/``height`` as defaults, Iconify's own defaults 0, 0, 16, 16 where
neither gives one) and its ``rotate``/``hFlip``/``vFlip`` applied as Iconify does. Aliases (another name for an
icon, at most flipped or rotated) and hidden icons (kept by Iconify only for old names) are skipped and counted:
a dataset wants each mark once. ``OUT/manifest.csv`` credits every SVG (licence and author from the set's own
``info``); ``OUT/<set>/iconify.json`` records the package, version, integrity and the set's ``info`` whole.

The Iconify set ``logos`` is held out for evaluation; it is refused unless ``--allow-held-out`` is given.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from tqdm import tqdm

from infra import cli
from infra.atomic import atomic_write, write_json, write_text
from infra.errors import UserError
from infra.output_paths import check_output_folder
from infra.user_cache import user_cache_dir
from scraping.download import http_session
from scraping.identity import resolve_contact
from scraping.manifest import MANIFEST, manifest_text, parse_manifest

DEFAULT_REGISTRY = "https://registry.npmjs.org"
REGISTRY_SETTING = "LOGOGAN_NPM_REGISTRY"
SCOPE = "@iconify-json"
# Held out for evaluation: no training or tuning data may come from it.
HELD_OUT = frozenset({"logos"})
NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # Iconify set prefixes and icon names
VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?")
ICONIFY_DEFAULTS = {"left": 0, "top": 0, "width": 16, "height": 16}
# Limits on what a tarball may hold; the largest Iconify sets are well inside them.
MAX_TARBALL_BYTES = 100 * 2**20
MAX_UNPACKED_BYTES = 400 * 2**20
MAX_MEMBERS = 200
ICONS_MEMBER = "package/icons.json"
INFO_MEMBER = "package/info.json"  # the set's info; older packages carry it inside icons.json instead
CHUNK = 64 * 1024
MAX_TIMEOUT = 3600  # seconds: a registry that has sent nothing for an hour is not coming back
# Strongest first; npm writes sha512.
SRI_ALGORITHMS = ("sha512", "sha384", "sha256")


@dataclass(frozen=True)
class SetSpec:
    name: str
    version: str | None = None  # None: the registry's latest

    def __str__(self) -> str:
        return self.name + (f"@{self.version}" if self.version else "")


@dataclass(frozen=True)
class Package:
    """One version of a set's npm package, as the registry describes it."""

    name: str  # the set, e.g. devicon
    version: str
    tarball: str
    integrity: str  # SRI, e.g. "sha512-..."; "" when the registry gives only a shasum
    shasum: str

    @property
    def npm_name(self) -> str:
        return f"{SCOPE}/{self.name}"


@dataclass(frozen=True)
class IconSvg:
    name: str
    svg: str


@dataclass
class IconSet:
    package: Package
    info: dict
    icons: list[IconSvg]
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    @property
    def prefix(self) -> str:
        return self.package.name

    def credit(self, icon: IconSvg) -> dict:
        """The manifest columns of one icon: licence and author as the set's own ``info`` gives them."""
        licence = self.info.get("license") if isinstance(self.info.get("license"), dict) else {}
        author = self.info.get("author") if isinstance(self.info.get("author"), dict) else {}
        return {
            "source_url": f"{self.package.tarball}#{icon.name}",
            "licence": str(licence.get("spdx") or licence.get("title") or "unknown"),
            "artist": str(author.get("name") or ""),
            "title": f"{self.info.get('name') or self.prefix}: {icon.name}",
            "page_url": f"https://icon-sets.iconify.design/{self.prefix}/{icon.name}/",
        }

    def provenance(self) -> dict:
        return {
            "set": self.prefix, "package": self.package.npm_name, "version": self.package.version,
            "tarball": self.package.tarball, "integrity": self.package.integrity or f"sha1:{self.package.shasum}",
            "licence": self.info.get("license"), "author": self.info.get("author"), "info": self.info,
            "icons_written": len(self.icons), "skipped": dict(sorted(self.skipped.items())),
        }


# ---- names, the registry and the cache ----------------------------------------------------------------


def parse_set_spec(text: str, allow_held_out: bool = False) -> SetSpec:
    name, at, version = text.partition("@")
    if not NAME.fullmatch(name) or (at and not VERSION.fullmatch(version)):
        raise UserError(f"--set {text!r}: expected an Iconify set name such as devicon, optionally pinned as "
                        "devicon@1.2.3 (lower-case letters, digits and dashes)")
    if name in HELD_OUT and not allow_held_out:
        raise UserError(f"--set {name}: held out for evaluation, never used for training or tuning; pass "
                        "--allow-held-out only to fetch it for an evaluation")
    return SetSpec(name, version or None)


def registry_url(flag: str | None) -> str:
    """--registry, else $LOGOGAN_NPM_REGISTRY, else the public npm registry; without a trailing slash."""
    url = flag or os.environ.get(REGISTRY_SETTING) or DEFAULT_REGISTRY
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        source = "--registry" if flag else f"${REGISTRY_SETTING}"
        raise UserError(f"{source} {url!r}: expected an http(s) URL such as {DEFAULT_REGISTRY}")
    return url.rstrip("/")


class Unreachable(UserError):
    """The registry or the tarball's host could not be reached (as opposed to answering no)."""


def network_failure(what: str, url: str, error: requests.RequestException) -> Unreachable:
    # requests' messages run to several lines of urllib3 detail; the kind of failure is what a user can act on.
    return Unreachable(f"{what}: cannot reach {url} ({type(error).__name__}); check the network or --registry, "
                     "or run once online so that the cache holds the set")


def resolve_package(spec: SetSpec, registry: str, session: requests.Session, timeout: float) -> Package:
    """The version ``spec`` names (or the latest) of its package, from the registry's metadata."""
    url = f"{registry}/{SCOPE}%2F{spec.name}"
    try:
        # The abbreviated metadata ("corgi") holds dist-tags and each version's dist: all that is needed.
        response = session.get(url, timeout=timeout, headers={"Accept": "application/vnd.npm.install-v1+json, "
                                                                         "application/json;q=0.8"})
    except requests.RequestException as error:
        raise network_failure(f"--set {spec}", url, error) from None
    if response.status_code == 404:
        raise UserError(f"--set {spec.name}: the registry {registry} has no package {SCOPE}/{spec.name}; see "
                        "https://icon-sets.iconify.design for the names of Iconify sets")
    if response.status_code != 200:
        raise UserError(f"--set {spec}: the registry answered HTTP {response.status_code} for {url}")
    try:
        document = response.json()
        version = spec.version or document["dist-tags"]["latest"]
        versions = document["versions"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"--set {spec}: {url} is not npm package metadata") from None
    if version not in versions:
        raise UserError(f"--set {spec}: {SCOPE}/{spec.name} has no version {version}; the latest is "
                        f"{document['dist-tags'].get('latest')}")
    dist = versions[version].get("dist") if isinstance(versions[version], dict) else None
    if not isinstance(dist, dict) or not isinstance(dist.get("tarball"), str):
        raise UserError(f"--set {spec}: {url} gives no tarball for version {version}")
    package = Package(spec.name, version, dist["tarball"], str(dist.get("integrity") or ""),
                      str(dist.get("shasum") or ""))
    if urlsplit(package.tarball).scheme not in ("http", "https"):
        raise UserError(f"--set {spec}: the tarball URL {package.tarball!r} is not http(s)")
    if not package.integrity and not package.shasum:
        raise UserError(f"--set {spec}: the registry gives no integrity hash for {version}; refusing an unchecked "
                        "tarball")
    return package


def check_integrity(body: bytes, package: Package, source: str) -> None:
    """UserError unless ``body`` has the hash the registry published (its strongest SRI, else the SHA-1)."""
    expected = {}
    for token in package.integrity.split():
        algorithm, _, digest = token.partition("-")
        expected.setdefault(algorithm, digest.split("?")[0])
    for algorithm in SRI_ALGORITHMS:
        if algorithm in expected:
            actual = base64.b64encode(hashlib.new(algorithm, body).digest()).decode()
            if actual != expected[algorithm]:
                raise UserError(f"{source}: the tarball's {algorithm} is {actual[:16]}..., the registry says "
                                f"{expected[algorithm][:16]}...; refused (corrupt download or tampered package)")
            return
    if not package.shasum:
        raise UserError(f"{source}: the registry's integrity {package.integrity!r} uses no hash this tool knows "
                        f"({', '.join(SRI_ALGORITHMS)}) and gives no shasum; refused")
    actual = hashlib.sha1(body).hexdigest()
    if actual != package.shasum.lower():
        raise UserError(f"{source}: the tarball's sha1 is {actual}, the registry says {package.shasum}; refused "
                        "(corrupt download or tampered package)")


class TarballCache:
    """``<root>/<set>-<version>.tgz`` with the registry's description of it beside it (``.json``), and
    ``<root>/<set>.latest`` naming the version last resolved as latest, for runs without a network."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, name: str, version: str, suffix: str) -> Path:
        return self.root / f"{name}-{version}{suffix}"

    def package(self, spec: SetSpec) -> Package | None:
        version = spec.version
        if version is None:
            pointer = self.root / f"{spec.name}.latest"
            version = pointer.read_text().strip() if pointer.is_file() else None
        record = self._path(spec.name, version, ".json") if version else None
        if record is None or not record.is_file():
            return None
        try:
            return Package(**json.loads(record.read_text()))
        except (ValueError, TypeError):
            return None  # a damaged record is as good as none: the set is fetched again

    def tarball(self, package: Package) -> bytes | None:
        path = self._path(package.name, package.version, ".tgz")
        return path.read_bytes() if path.is_file() else None

    def store(self, package: Package, body: bytes, latest: bool) -> None:
        with atomic_write(self._path(package.name, package.version, ".tgz")) as handle:
            handle.write(body)
        write_json(self._path(package.name, package.version, ".json"), package.__dict__)
        if latest:
            self.mark_latest(package)

    def mark_latest(self, package: Package) -> None:
        write_text(self.root / f"{package.name}.latest", package.version + "\n")


def download_tarball(package: Package, session: requests.Session, timeout: float, progress: bool) -> bytes:
    source = f"{package.npm_name}@{package.version}"
    try:
        with session.get(package.tarball, timeout=timeout, stream=True) as response:
            if response.status_code != 200:
                raise UserError(f"--set {package.name}: HTTP {response.status_code} for the tarball {package.tarball}")
            length = int(response.headers.get("Content-Length") or 0)
            if length > MAX_TARBALL_BYTES:
                raise UserError(f"--set {package.name}: {source} is {length} bytes, over {MAX_TARBALL_BYTES}")
            body = bytearray()
            with tqdm(total=length or None, desc=f"Fetching {source}", unit="B", unit_scale=True,
                      disable=not progress) as bar:
                for chunk in response.iter_content(CHUNK):
                    body.extend(chunk)
                    bar.update(len(chunk))
                    if len(body) > MAX_TARBALL_BYTES:
                        raise UserError(f"--set {package.name}: {source} is over {MAX_TARBALL_BYTES} bytes")
    except requests.RequestException as error:
        raise network_failure(f"--set {package.name}", package.tarball, error) from None
    return bytes(body)


# ---- the tarball and icons.json ---------------------------------------------------------------------


def read_members(tarball: bytes, source: str, wanted: tuple[str, ...]) -> dict[str, bytes]:
    """The ``wanted`` files of an npm tarball, read in memory; every member is checked before any is used."""
    found = {}
    unpacked = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for count, member in enumerate(archive, 1):
                if count > MAX_MEMBERS:
                    raise UserError(f"{source}: more than {MAX_MEMBERS} files in the tarball; refused")
                try:
                    tarfile.data_filter(member, "/package-root")
                except tarfile.FilterError as error:
                    raise UserError(f"{source}: unsafe tarball member {member.name!r} ({type(error).__name__}); "
                                    "refused") from None
                unpacked += member.size
                if unpacked > MAX_UNPACKED_BYTES:
                    raise UserError(f"{source}: unpacks to more than {MAX_UNPACKED_BYTES} bytes; refused")
                if member.isfile() and member.name.removeprefix("./") in wanted:
                    found[member.name.removeprefix("./")] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise UserError(f"{source}: not a readable .tgz ({type(error).__name__}: {str(error)[:80]})") from None
    return found


def parse_json_member(members: dict[str, bytes], name: str, source: str):
    try:
        return json.loads(members[name])
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{source}: {name} is not JSON ({str(error)[:80]})") from None


def read_icon_set_json(tarball: bytes, source: str) -> tuple[dict, dict]:
    """(icons.json, the set's info) of an Iconify JSON package."""
    members = read_members(tarball, source, (ICONS_MEMBER, INFO_MEMBER))
    if ICONS_MEMBER not in members:
        raise UserError(f"{source}: holds no {ICONS_MEMBER}; not an Iconify JSON package")
    data = parse_json_member(members, ICONS_MEMBER, source)
    if not isinstance(data, dict) or not isinstance(data.get("icons"), dict):
        raise UserError(f"{source}: {ICONS_MEMBER} has no 'icons' object; not an Iconify JSON set")
    info = parse_json_member(members, INFO_MEMBER, source) if INFO_MEMBER in members else data.get("info")
    return data, info if isinstance(info, dict) else {}


def number(value, default: float, what: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{what} is {value!r}, not a number")
    return value


def fmt(value: float) -> str:
    return f"{value:g}"


def icon_svg(body: str, box: dict, rotate: int = 0, h_flip: bool = False, v_flip: bool = False) -> str:
    """A standalone SVG of an Iconify icon, transformed as Iconify's ``iconToSVG`` does."""
    box = dict(box)
    transforms = []
    if h_flip and v_flip:
        rotate += 2
    elif h_flip:
        transforms += [f"translate({fmt(box['width'] + box['left'])} {fmt(-box['top'])})", "scale(-1 1)"]
        box["top"] = box["left"] = 0
    elif v_flip:
        transforms += [f"translate({fmt(-box['left'])} {fmt(box['height'] + box['top'])})", "scale(1 -1)"]
        box["top"] = box["left"] = 0
    rotate %= 4
    if rotate == 1:
        centre = box["height"] / 2 + box["top"]
        transforms.insert(0, f"rotate(90 {fmt(centre)} {fmt(centre)})")
    elif rotate == 2:
        transforms.insert(0, f"rotate(180 {fmt(box['width'] / 2 + box['left'])} {fmt(box['height'] / 2 + box['top'])})")
    elif rotate == 3:
        centre = box["width"] / 2 + box["left"]
        transforms.insert(0, f"rotate(-90 {fmt(centre)} {fmt(centre)})")
    if rotate % 2:
        box["left"], box["top"] = box["top"], box["left"]
        box["width"], box["height"] = box["height"], box["width"]
    if transforms:
        body = f'<g transform="{" ".join(transforms)}">{body}</g>'
    view_box = " ".join(fmt(box[key]) for key in ("left", "top", "width", "height"))
    return ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{fmt(box["width"])}" height="{fmt(box["height"])}" viewBox="{view_box}">{body}</svg>\n')


def icons_from_json(data: dict, source: str) -> tuple[list[IconSvg], Counter]:
    """Every visible icon of an Iconify JSON set as an SVG, by name; and what was skipped, by reason."""
    defaults = {key: number(data.get(key), value, f"{source}: the set's {key}")
                for key, value in ICONIFY_DEFAULTS.items()}
    icons, skipped = [], Counter()
    for name in sorted(data["icons"]):
        entry = data["icons"][name]
        if not NAME.fullmatch(name):
            raise UserError(f"{source}: icons.json names an icon {name[:60]!r}, not an Iconify name (lower-case "
                            "letters, digits, dashes); refused")
        if not isinstance(entry, dict) or not isinstance(entry.get("body"), str):
            raise UserError(f"{source}: icon {name!r} has no SVG body")
        if entry.get("hidden"):
            skipped["hidden"] += 1
            continue
        box = {key: number(entry.get(key), defaults[key], f"{source}: icon {name!r} {key}") for key in defaults}
        rotate = int(number(entry.get("rotate"), 0, f"{source}: icon {name!r} rotate"))
        icons.append(IconSvg(name, icon_svg(entry["body"], box, rotate, bool(entry.get("hFlip")),
                                            bool(entry.get("vFlip")))))
    aliases = data.get("aliases")
    if isinstance(aliases, dict) and aliases:
        skipped["alias"] += len(aliases)
    return icons, skipped


# ---- a whole set --------------------------------------------------------------------------------------


def load_icon_set(spec: SetSpec, registry: str, cache: TarballCache, session: requests.Session, *,
                  timeout: float = 60.0, progress: bool = True, limit: int | None = None) -> IconSet:
    """The icons of one set: from the cache when it holds the version the registry names, else downloaded
    and checked; from the cache alone (with a note on stderr) when the registry cannot be reached."""
    try:
        package = resolve_package(spec, registry, session, timeout)
    except Unreachable:
        cached = cache.package(spec)
        if cached is None:
            raise
        print(f"note: the registry {registry} cannot be reached; using the cached {cached.npm_name}@"
              f"{cached.version}", file=sys.stderr)
        package = cached
    source = f"{package.npm_name}@{package.version}"
    body = cache.tarball(package)
    if body is None or cache.package(SetSpec(package.name, package.version)) != package:
        body = download_tarball(package, session, timeout, progress)
        check_integrity(body, package, source)
        cache.store(package, body, latest=spec.version is None)
    else:
        check_integrity(body, package, source + " (cached)")
        if spec.version is None:
            cache.mark_latest(package)
    data, info = read_icon_set_json(body, source)
    icons, skipped = icons_from_json(data, source)
    if data.get("prefix") not in (None, spec.name):
        raise UserError(f"{source}: icons.json is the set {data.get('prefix')!r}, not {spec.name!r}")
    if limit is not None:
        skipped["over --limit"] += max(0, len(icons) - limit)
        icons = icons[:limit]
    return IconSet(package, info, icons, skipped)


def write_file(path: Path, text: str) -> None:
    """Written beside its place and moved there, so a killed run never leaves half an SVG."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(text)
    Path(handle.name).replace(path)


def write_icon_set(icon_set: IconSet, out: Path, progress: bool) -> list[dict]:
    """One SVG per icon under ``out/<set>/`` and the set's provenance; the manifest rows of the SVGs."""
    folder = out / icon_set.prefix
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for icon in tqdm(icon_set.icons, desc=f"Writing {icon_set.prefix}", unit="icon", disable=not progress):
        body = icon.svg.encode("utf-8")
        write_file(folder / f"{icon.name}.svg", icon.svg)
        digest = hashlib.sha1(body).hexdigest()
        rows.append({"path": f"{icon_set.prefix}/{icon.name}.svg", "sha1": digest, "content_sha1": digest,
                     "bytes": len(body), **icon_set.credit(icon)})
    write_json(folder / "iconify.json", icon_set.provenance())
    return rows


def cache_root(flag: Path | None) -> Path:
    return flag if flag is not None else user_cache_dir("iconify")


# ---- the command --------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scraping.iconify",
        description="Fetch Iconify JSON icon sets (npm packages @iconify-json/NAME) and write one standalone SVG "
        "per icon into OUT/<set>/, with OUT/manifest.csv crediting each (licence and author from the set's own "
        "info) and OUT/<set>/iconify.json recording the package, version and integrity. Tarballs are checked "
        "against the registry's integrity hash and cached; aliases and hidden icons are skipped and counted.",
        epilog="examples:\n"
        "  python -m scraping.iconify --set devicon --set skill-icons --out collected/iconify\n"
        "  python -m scraping.iconify --set flat-color-icons@1.2.3 --out collected/iconify --limit 20\n"
        "  python -m preprocessing.build --input collected/iconify --labels none --size 56 --out data/x.npz\n"
        f"The Iconify set 'logos' is held out for evaluation and refused without --allow-held-out.\n"
        f"Environment: {REGISTRY_SETTING} (registry), LOGOGAN_CACHE_DIR (cache root), LOGOGAN_CONTACT.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--set", dest="sets", action="append", required=True, metavar="NAME[@VERSION]",
                        help="Iconify set to fetch, e.g. devicon or devicon@1.2.68; repeatable (required)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for <set>/<icon>.svg and manifest.csv; rows of other sets already in its "
                        "manifest are kept (required)")
    parser.add_argument("--registry", default=None,
                        help=f"npm registry URL (default: ${REGISTRY_SETTING}, else {DEFAULT_REGISTRY})")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder caching tarballs (default: iconify/ in the LogoGAN user cache, "
                        "$LOGOGAN_CACHE_DIR or ~/.cache/logogan)")
    parser.add_argument("--limit", type=int, default=None, help="write only the first N icons of each set by name "
                        "(default: all)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the registry, at most 3600 (default: 60)")
    parser.add_argument("--retries", type=int, default=3,
                        help="retries on 429/5xx and failed connections, with backoff and Retry-After (default: 3)")
    parser.add_argument("--contact", default=None, help="e-mail or URL for the User-Agent (default: $LOGOGAN_CONTACT)")
    parser.add_argument("--allow-held-out", action="store_true",
                        help="allow the held-out evaluation set 'logos' (only for evaluation, never for training)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    specs = [parse_set_spec(text, args.allow_held_out) for text in args.sets]
    if len({spec.name for spec in specs}) != len(specs):
        raise UserError(f"--set: each set once, got {', '.join(args.sets)}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit} must be 1 or more")
    cli.check_seconds("--timeout", args.timeout, MAX_TIMEOUT)
    if args.retries < 0:
        raise UserError(f"--retries {args.retries} must be 0 or more")
    registry = registry_url(args.registry)
    check_output_folder(args.out, "--out")
    cache = TarballCache(check_output_folder(cache_root(args.cache), "--cache"))
    previous = parse_manifest((args.out / MANIFEST).read_bytes() if (args.out / MANIFEST).is_file() else None,
                              str(args.out / MANIFEST))
    session = http_session(resolve_contact(args.contact), args.retries, 2)
    # Every set is fetched and checked before anything is written, so one bad set leaves OUT as it was.
    icon_sets = [load_icon_set(spec, registry, cache, session, timeout=args.timeout, progress=not args.no_progress,
                               limit=args.limit) for spec in specs]
    rows = []
    for icon_set in icon_sets:
        rows += write_icon_set(icon_set, args.out, progress=not args.no_progress)
    written = {spec.name for spec in specs}
    kept = [row for row in previous if row["path"].split("/", 1)[0] not in written]
    write_text(args.out / MANIFEST, manifest_text(sorted(kept + rows, key=lambda row: row["path"])))
    for icon_set in icon_sets:
        skipped = ", ".join(f"{reason}: {count}" for reason, count in sorted(icon_set.skipped.items()))
        licence = icon_set.credit(IconSvg("", ""))["licence"]
        print(f"{icon_set.prefix} {icon_set.package.version} ({licence}): {len(icon_set.icons)} SVGs in "
              f"{args.out / icon_set.prefix}" + (f"; skipped {skipped}" if skipped else ""))
    return 0


if __name__ == "__main__":
    cli.run(main)
