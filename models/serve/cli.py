"""Serve trained GANs over HTTP: generate images from every finished run, train new runs, a gallery page.

    python -m models.serve --runs runs/

The server binds to 127.0.0.1. To bind any other address, give a --token (or set LOGOGAN_TOKEN): every
request must then carry it as 'Authorization: Bearer TOKEN' or '?token=TOKEN'. Generators load on first
use and stay loaded; runs that finish while the server is up appear without a restart, and a run whose
files are broken is listed with its problem while the others are served. Training jobs posted to /api/jobs
run one at a time through 'python -m models.train'; stopping the server (Ctrl-C, SIGTERM, SIGHUP) stops
the running one with a checkpoint, a second signal stops it at once, and a job never outlives the server.
A token given as ?token= is written to the access log as token=[redacted].

The server is waitress (threads, no processes of its own): --threads requests are answered at a time, at
most --connection-limit connections are open (more wait to be accepted), a connection whose request is not
whole --connection-timeout seconds (default 30) after it began, or that is idle that long, is closed, a
request body over 2 MiB is refused, and one /generate renders at most 16 samples at 1024 px (256 at 256 px;
SVGs any number). Requests must name this server in their Host header (the address it is
bound to, for a loopback bind 127.0.0.1, localhost or [::1] with the port; others with --allowed-host).
Requests that change something (POST, DELETE) are refused from other sites' pages and must send
Content-Type: application/json. At most --max-queued-jobs jobs wait at a time; more are refused with 429.
"""
# The docstring above is the --help text of ``python -m models.serve``, which runs main() through __main__.py.
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from infra import cli
from infra.errors import UserError
from models.config.limits import MAX_CONFIG_BYTES
from models.serve import wsgi_server
from models.serve.access_log import AccessLog
from models.serve.app import create_app
from models.serve.guard import is_loopback, parse_allowed_host, served_hosts
from models.serve.jobs import DEFAULT_MAX_QUEUED, JobQueue

DEFAULT_DATA_ROOT = Path("data")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Waitress reads a whole request before the app sees it: past this it refuses the body itself. Above the
# app's own limit, so that a config a little too large still gets the app's answer.
MAX_BODY_BYTES = 2 * MAX_CONFIG_BYTES
LIMITS = {"threads": (1, 64), "connection_limit": (1, 10_000), "connection_timeout": (1, 3600),
          "max_queued_jobs": (1, 1000)}

EPILOG = """examples:
  python -m models.serve --runs runs/
  python -m models.serve --runs runs/ --port 8080 --data-root data/
  LOGOGAN_TOKEN=s3cret python -m models.serve --runs runs/ --host 0.0.0.0 --allowed-host gpu-box.lan
  python -m models.serve --runs runs/ --threads 8 --connection-limit 1000 --max-queued-jobs 2

then open http://127.0.0.1:5000/ or, for example:
  curl -o sneakers.png 'http://127.0.0.1:5000/generate?run=NAME&class=Sneaker&n=16&seed=7'
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m models.serve",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=Path, required=True,
                        help="folder of run folders (as written by models.train --runs-dir); new jobs' runs go here too")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind; anything but a loopback address needs --token (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="TCP port, 0 for any free one (default: 5000)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="the only folder posted training configs may read data from; it must exist "
                             "(default: data/; without it, jobs can only train on fashion_mnist or mnist)")
    parser.add_argument("--token", default=os.environ.get("LOGOGAN_TOKEN") or None,
                        help="secret every request must carry; prefer the LOGOGAN_TOKEN setting, which other "
                             "users cannot see in the process list (default: $LOGOGAN_TOKEN, else none)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="another name clients may reach the server by (NAME or NAME:PORT, repeatable): "
                             "requests whose Host header names anything but the bound address (and, for a "
                             "loopback bind, 127.0.0.1, localhost and [::1]) are refused with 400")
    parser.add_argument("--threads", type=int, default=wsgi_server.DEFAULT_THREADS,
                        help=f"requests answered at a time (1 to 64; default: {wsgi_server.DEFAULT_THREADS})")
    parser.add_argument("--connection-limit", type=int, default=wsgi_server.DEFAULT_CONNECTION_LIMIT,
                        help="open connections at most; further ones wait to be accepted (1 to 10000; default: "
                             f"{wsgi_server.DEFAULT_CONNECTION_LIMIT})")
    parser.add_argument("--connection-timeout", type=int, default=wsgi_server.DEFAULT_CONNECTION_TIMEOUT_S,
                        metavar="SECONDS",
                        help="close a connection idle this long, or whose request is not whole this long after "
                             f"it began (1 to 3600; default: {wsgi_server.DEFAULT_CONNECTION_TIMEOUT_S})")
    parser.add_argument("--max-queued-jobs", type=int, default=DEFAULT_MAX_QUEUED,
                        help="training jobs waiting at most, besides the running one; one more is refused "
                             f"with 429 (1 to 1000; default: {DEFAULT_MAX_QUEUED})")
    return parser.parse_args(argv)


def check_args(args) -> None:
    if not args.runs.is_dir():
        raise UserError(f"--runs {args.runs}: no such folder; create it or point at the folder models.train writes runs to")
    if args.data_root is not None and not args.data_root.is_dir():
        raise UserError(f"--data-root {args.data_root}: no such folder; give the folder that holds the training data")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a TCP port; use 0 to 65535")
    for key, (low, high) in LIMITS.items():
        value = getattr(args, key)
        if not low <= value <= high:
            raise UserError(f"--{key.replace('_', '-')} {value} is out of range; use {low} to {high}")
    for name in args.allowed_host:
        try:
            parse_allowed_host(name)
        except ValueError as error:
            raise UserError(str(error)) from None
    if not is_loopback(args.host) and not args.token:
        raise UserError(
            f"--host {args.host} would let anyone who can reach this machine use the server; "
            "add --token SECRET (or set LOGOGAN_TOKEN), or bind 127.0.0.1"
        )


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind here rather than in the server, which reports a busy port with several lines and exit status 1."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(socket.SOMAXCONN)
    except OSError as error:
        listener.close()
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror or error}); choose another --port or --host") from None
    return listener


def stop_on_signals() -> None:
    """SIGTERM (kill, systemd, docker stop) and SIGHUP (a closed terminal) shut down like Ctrl-C: the
    running job keeps a checkpoint."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for number in STOP_SIGNALS:
        signal.signal(number, interrupt)


def kill_jobs_on_signals(jobs: JobQueue) -> None:
    """While the server waits for its job's checkpoint, another signal means: stop it now."""
    def kill(signum, frame):
        print("models.serve: stopping the running job without waiting for its checkpoint", file=sys.stderr, flush=True)
        jobs.kill()

    for number in STOP_SIGNALS:
        signal.signal(number, kill)


def log_to_stderr() -> None:
    """The access log and waitress's own warnings (connection limit reached and the like) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name, level in (("models.serve.access", logging.INFO), ("waitress", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False


def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    listener = listening_socket(args.host, args.port)
    port = listener.getsockname()[1]
    jobs = JobQueue(args.runs, max_queued=args.max_queued_jobs)
    app = create_app(args.runs, args.data_root or DEFAULT_DATA_ROOT, token=args.token, jobs=jobs,
                     allowed_hosts=served_hosts(args.host, port, args.allowed_host))
    server = wsgi_server.make_server(AccessLog(app), listener, threads=args.threads,
                                     connection_limit=args.connection_limit,
                                     connection_timeout=args.connection_timeout, max_body_bytes=MAX_BODY_BYTES)
    log_to_stderr()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Serving runs from {args.runs} at http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
    stop_on_signals()
    try:
        server.run()  # returns on Ctrl-C or SIGTERM: waitress catches the KeyboardInterrupt
    finally:
        kill_jobs_on_signals(jobs)
        jobs.close()
        listener.close()
    print("models.serve: stopped", file=sys.stderr)
    return cli.EXIT_INTERRUPTED

