"""The production server under the Flask app: waitress, with a deadline per request and JSON error answers.

Waitress answers each connection from one event loop and runs the app on a fixed pool of threads, so
connections that are slow to send cost a socket each, never a thread. It already closes a connection that
has sent nothing for ``channel_timeout`` seconds; this server also closes one whose request is still
incomplete that long after it began, so that a client trickling a byte now and then cannot hold a
connection either. The errors waitress answers itself (a body over the size limit, a malformed request)
come as the app's own one-line JSON errors, with the same security headers.
"""
from __future__ import annotations

import json
import socket
import time

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from models.serve.guard import SECURITY_HEADERS

DEFAULT_THREADS = 4
DEFAULT_CONNECTION_LIMIT = 500
DEFAULT_CONNECTION_TIMEOUT_S = 30
MAX_CLEANUP_INTERVAL_S = 5  # how often connections are looked at: the timeout is kept to within this


class TimedRequestParser(HTTPRequestParser):
    """A request being read, with the time its first byte arrived."""

    def __init__(self, adj):
        super().__init__(adj)
        self.started = time.monotonic()


class JsonErrorTask(ErrorTask):
    """Waitress's own error answers (413, 400, 431) as ``{"error", "status"}`` like the app's."""

    def execute(self):
        error = self.request.error
        body = json.dumps({"error": f"{error.reason}: {error.body}", "status": error.code}).encode() + b"\n"
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), *SECURITY_HEADERS.items(),
                                      ("Cache-Control", "no-store")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class DeadlineChannel(HTTPChannel):
    parser_class = TimedRequestParser
    error_task_class = JsonErrorTask


class DeadlineServer(TcpWSGIServer):
    channel_class = DeadlineChannel

    def maintenance(self, now):
        """Close connections idle for the timeout, and those whose request is not whole after it."""
        timeout = self.adj.channel_timeout
        late = time.monotonic() - timeout
        for channel in list(self.active_channels.values()):
            if channel.requests:  # being answered: the app's time is not the client's
                continue
            partial = channel.request
            if channel.last_activity < now - timeout or (partial is not None and partial.started < late):
                channel.will_close = True


def make_server(app, listener: socket.socket, threads: int = DEFAULT_THREADS,
                connection_limit: int = DEFAULT_CONNECTION_LIMIT,
                connection_timeout: int = DEFAULT_CONNECTION_TIMEOUT_S, max_body_bytes: int = 2 * 1024 * 1024,
                ) -> DeadlineServer:
    """A server for ``app`` on the bound, listening ``listener``; ``run()`` serves until KeyboardInterrupt."""
    adjustments = Adjustments(
        sockets=[listener], threads=threads, connection_limit=connection_limit, channel_timeout=connection_timeout,
        cleanup_interval=max(1, min(MAX_CLEANUP_INTERVAL_S, connection_timeout // 4)),
        max_request_body_size=max_body_bytes, backlog=socket.SOMAXCONN, ident="LogoGAN",
        asyncore_use_poll=True,  # select() cannot watch sockets numbered past 1024
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    sockinfo = (listener.family, listener.type, listener.proto, listener.getsockname())
    return DeadlineServer(app, map={}, _sock=listener, dispatcher=dispatcher, adj=adjustments, bind_socket=False,
                          sockinfo=sockinfo)
