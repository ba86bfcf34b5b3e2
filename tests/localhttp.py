"""A real HTTP server on 127.0.0.1 (a random port) that answers through one function, for the fake
protocol peers of the delivery tests (JIRA, the Slack webhook)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes


@dataclass
class Reply:
    status: int
    body: Any = None  # bytes as they are, str as text/plain, anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)


class LocalHTTP:
    """Serves `handle(request) -> Reply` until stop(); an exception in `handle` becomes a 500
    and is listed in `crashes`, which tests should assert is empty."""

    def __init__(self, handle: Callable[[Request], Reply], *, name: str) -> None:
        self.handle = handle
        self.name = name
        self.crashes: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        """The address (still known after stop(), for asserting on messages)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} was never started")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> None:
        self._server = _Server(self)
        self._port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name=self.name
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def serve(self, request: Request) -> Reply:
        try:
            return self.handle(request)
        except Exception as exc:  # a bug in a fake must fail the test, not hang it
            self.crashes.append(f"{request.method} {request.path}: {exc!r}")
            return Reply(500, {"errorMessages": [f"{self.name} crashed"]})


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 and a free port. Request threads are not daemons
    and server_close() joins them, so stopping leaves nothing running."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which can stall offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.socket.getsockname()[1]


class _Server(LoopbackServer):
    def __init__(self, owner: LocalHTTP) -> None:
        super().__init__(_Handler)
        self.owner = owner


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles open at stop()
    timeout = 10

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        request = Request(
            self.command, split.path, dict(parse_qsl(split.query)), self.headers, body
        )
        reply = self.server.owner.serve(request)
        if isinstance(reply.body, bytes):
            data, kind = reply.body, "application/octet-stream"
        elif isinstance(reply.body, str):
            data, kind = reply.body.encode(), "text/plain; charset=utf-8"
        elif reply.body is None:
            data, kind = b"", "text/plain"
        else:
            data, kind = orjson.dumps(reply.body), "application/json;charset=UTF-8"
        self.send_response(reply.status)
        headers = {"Content-Type": kind, **reply.headers, "Content-Length": str(len(data))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the fakes keep their own logs."""
