"""The Flask app: routes, the token check, and turning requests into registry and job-queue calls.

Routes (every answer to bad input is a 4xx JSON ``{"error", "status", "allowed"?}``):

- ``GET /`` the gallery page; ``GET /?generate_sample=Sneaker`` one image of that class (the old API);
- ``GET /api/models`` the finished runs, and those whose files are broken with what is wrong;
- ``GET /generate?run=NAME&class=Sneaker&n=16&seed=7[&format=zip|svg][&checkpoint=best]`` a PNG grid or a zip
  (of PNGs; of SVGs with format=svg and n > 1, or one SVG); ``seeds=0-35`` one image per seed instead of n and
  seed; ``truncation=0.7``; for a vector generator also ``size=PX`` and ``colours=#rrggbb,...``;
- ``GET|POST /api/jobs``, ``GET|DELETE /api/jobs/ID`` training jobs;
- ``GET /api/runs/NAME/samples/FILE`` a run's sample grids (what a job's ``sample_url`` points at).

Before any route, :mod:`models.serve.guard` checks the Host, the origin of changes and their JSON content
type, and adds the security headers. No answer names a folder of the server's by its absolute path: the runs
folder and the data root are written as paths relative to them.
"""
from __future__ import annotations

import hmac
import io
import re
import secrets
import time
import zipfile
from pathlib import Path
from typing import Iterable

from flask import Flask, Response, jsonify, render_template, request, send_file, url_for

from infra.bounded_json import loads_bounded
from infra.errors import UserError, quoted
from models import run_folder
from models.config.limits import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH
from models.images import image_grid, png_bytes
from models.serve import configs, guard, params
from models.serve.errors import ApiError, register_error_handlers
from models.serve.jobs import Job, JobQueue
from models.serve.registry import RunRegistry

LOOK_PARAMETERS = ("seeds", "truncation", "size", "colours")
GENERATE_PARAMETERS = ("run", "class", "n", "seed", "format", "checkpoint", *LOOK_PARAMETERS)
PAGE_PARAMETERS = ("generate_sample", "run", "n", "seed", "format", "checkpoint")
DEFAULT_GRID = 16


def filename_part(text: str) -> str:
    """A class name fit for a file name: "T-shirt/top" becomes "T-shirt-top"."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "class"


def zip_bytes(images, stem: str, names: list[str] | None = None) -> bytes:
    """One PNG per image (an SVG per document given as text), ``<stem>-000.png`` upwards or ``<stem>-NAME``, in
    a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, image in enumerate(images):
            name = names[index] if names else f"{index:03d}"
            if isinstance(image, str):
                archive.writestr(f"{stem}-{name}.svg", image)
            else:
                archive.writestr(f"{stem}-{name}.png", png_bytes(image))
    return buffer.getvalue()


def only_parameters(allowed: Iterable[str]) -> None:
    """A misspelt parameter is an error, not a silently ignored setting; so is one given twice (?n=1&n=64), of
    which any one value taken would be a guess."""
    allowed = [*allowed, "token"]
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown parameter {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}", allowed)
    repeated = sorted(key for key in request.args if len(request.args.getlist(key)) > 1)
    if repeated:
        raise ApiError(400, f"parameter {', '.join(map(repr, repeated))} given more than once; give each once")


def path_hider(folders: dict[Path, str]):
    """A function that rewrites ``folder/x`` as ``x`` and a bare ``folder`` as its description, for each
    folder (resolved and as given) in ``folders``."""
    spellings = sorted({(str(spelling), label) for folder, label in folders.items()
                        for spelling in (Path(folder).absolute(), Path(folder).resolve()) if str(spelling) != "/"},
                       key=lambda pair: -len(pair[0]))  # the longest first: a folder inside another

    def hide(text: str) -> str:
        for spelling, label in spellings:
            text = text.replace(spelling + "/", "").replace(spelling, label)
        return text

    return hide


def create_app(runs_dir: Path, data_root: Path, token: str | None = None, jobs: JobQueue | None = None,
               allowed_hosts: guard.AllowedHosts = guard.LOOPBACK_ANY_PORT) -> Flask:
    """The app; ``allowed_hosts`` are the Host values it answers (see models.serve.guard)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONFIG_BYTES
    app.json.sort_keys = False
    data_root = Path(data_root)
    registry = RunRegistry(runs_dir, data_root)
    jobs = jobs or JobQueue(runs_dir)
    hide_paths = path_hider({data_root: "the data root", Path(runs_dir): "the runs folder"})
    guard.install(app, allowed_hosts)
    register_error_handlers(app, hide_paths)

    @app.before_request
    def check_token():
        if token is None:
            return
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ") if header.startswith("Bearer ") else request.args.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(401, "missing or wrong token: send the header 'Authorization: Bearer TOKEN' or add ?token=TOKEN")

    def generate(class_key: str, default_n: int) -> Response:
        info = registry.get(request.args.get("run"))
        seeds = params.seeds(request.args)
        n = len(seeds) if seeds is not None else params.sample_count(request.args, default_n)
        seed = None if seeds is not None else params.seed(request.args)
        kind = params.choice(request.args, "format", params.FORMATS)
        checkpoint = params.choice(request.args, "checkpoint", params.CHECKPOINTS)
        look = {"truncation": params.truncation(request.args), "size": params.size(request.args),
                "colours": request.args.get("colours") or None}
        params.check_rendered_pixels(n, look["size"], kind)
        images, class_index = registry.sample(info, checkpoint, n, seed, request.args.get(class_key), seeds=seeds,
                                              svg=kind == "svg", class_parameter=class_key, **look)
        label = "any-class" if class_index is None else filename_part(info.class_names[class_index])
        stem = f"{info.name}-{label}-" + (f"seed{seed}" if seeds is None else "seeds")
        names = None if seeds is None else [f"seed{value:04d}" for value in seeds]
        if kind == "zip" or (kind == "svg" and n > 1):
            response = Response(zip_bytes(images, stem, names), mimetype="application/zip")
            kind = "zip"
        elif kind == "svg":
            response = Response(images[0], mimetype="image/svg+xml")
        else:
            picture = images[0] if n == 1 else image_grid(images)  # one image is sent as itself, unframed
            response = Response(png_bytes(picture), mimetype="image/png")
        response.headers["Content-Disposition"] = f'inline; filename="{stem}.{kind}"'
        response.headers["X-Run"] = info.name
        response.headers["X-Seed"] = str(seed) if seeds is None else request.args["seeds"][:200]
        if class_index is not None:
            response.headers["X-Class-Index"] = str(class_index)
        return response

    @app.get("/")
    def index():
        only_parameters(PAGE_PARAMETERS)
        if "generate_sample" in request.args:
            return generate("generate_sample", default_n=1)
        return render_template("index.html", token=request.args.get("token"))

    @app.get("/generate")
    def generate_grid():
        only_parameters(GENERATE_PARAMETERS)
        return generate("class", default_n=DEFAULT_GRID)

    @app.get("/api/models")
    def models():
        only_parameters(())
        runs = registry.runs()
        return jsonify({
            "runs_dir": registry.runs_dir.name,
            "models": [info.summary(registry.data_root) for info in runs if not info.problem],
            "broken": [{"name": info.name, "problem": hide_paths(info.problem)} for info in runs if info.problem],
        })

    def job_json(job: Job) -> dict:
        described = jobs.describe(job)
        sample = described.pop("sample")
        described["message"] = hide_paths(described["message"])
        described["url"] = url_for("job", job_id=job.id)
        described["sample_url"] = url_for("run_sample", name=job.id, filename=sample) if sample else None
        return described

    @app.get("/api/jobs")
    def job_list():
        only_parameters(())
        return jsonify({"jobs": [job_json(job) for job in jobs.all()]})

    @app.post("/api/jobs")
    def job_submit():
        only_parameters(("name",))
        config = posted_config()
        name = params.name(request.args.get("name") or default_job_name(config), "name")
        job = jobs.submit(configs.check_posted_config(config, data_root), name)
        response = jsonify(job_json(job))
        response.status_code = 202
        response.headers["Location"] = url_for("job", job_id=job.id)
        return response

    @app.get("/api/jobs/<job_id>")
    def job(job_id: str):
        only_parameters(())
        return jsonify(job_json(jobs.get(job_id)))

    @app.delete("/api/jobs/<job_id>")
    def job_cancel(job_id: str):
        only_parameters(())
        job = jobs.cancel(job_id)
        return jsonify(job_json(job)), 200 if job.done.is_set() else 202

    @app.get("/api/runs/<name>/samples/<filename>")
    def run_sample(name: str, filename: str):
        only_parameters(())
        params.name(name, "run")
        path = run_folder.sample_file(registry.runs_dir / name, filename)
        if path is None:
            raise ApiError(404, f"run {name!r} has no sample {quoted(filename)} "
                                "(sample files are named step_NNNNNN.png)")
        return send_file(path, mimetype="image/png", max_age=0)

    return app


def posted_config() -> object:
    """The JSON config of the request body (the guard has checked that it is declared JSON)."""
    raw = request.get_data()
    if not raw.strip():
        raise ApiError(400, "no config: send a JSON config as the request body (Content-Type: application/json)")
    try:
        return loads_bounded(raw, "request body", max_depth=MAX_CONFIG_DEPTH, strict=True)
    except UserError as error:
        raise ApiError(400, str(error)) from None


def default_job_name(config: object) -> str:
    """The config's own ``name``, else the time plus a few random characters (two jobs posted in the same
    second still get different folders)."""
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return config["name"]
    return f"job_{time.strftime('%Y%m%d-%H%M%S')}_{secrets.token_hex(2)}"
