"""A real JWKS endpoint for the tests: an HTTP server on 127.0.0.1 in a thread.

It serves whatever `keys` holds, counts every request, and can be switched to fail:
`mode = "ok"` serves the set, `"error"` answers 500, `"hang"` holds the connection open
until the server stops (longer than any client timeout). `raw_body` replaces the document with
arbitrary bytes, `redirect_to` answers 302 to that URL. `close()` stops listening, so the port
refuses connections from then on.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

type Mode = Literal["ok", "error", "hang"]


class JwksServer:
    def __init__(self, keys: list[dict[str, Any]] | None = None, path: str = "/.well-known/jwks.json") -> None:
        self.keys: list[dict[str, Any]] = list(keys or [])
        self.mode: Mode = "ok"
        self.raw_body: bytes | None = None
        self.redirect_to: str | None = None
        self.path = path
        self.paths: list[str] = []  # every request path received, in order
        self._hits = threading.Condition()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="jwks-server", daemon=True
        )
        self._closed = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def hits(self) -> int:
        with self._hits:
            return len(self.paths)

    def wait_for_hits(self, count: int, timeout: float = 5.0) -> bool:
        """Block (in a worker thread, via `asyncio.to_thread`) until `count` requests arrived."""
        with self._hits:
            return self._hits.wait_for(lambda: len(self.paths) >= count, timeout)

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port (connections to it are refused afterwards)."""
        if self._closed:
            return
        self._closed = True
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _record(self, path: str) -> None:
        with self._hits:
            self.paths.append(path)
            self._hits.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._record(self.path)
                if server.mode == "hang":
                    server._release.wait(timeout=30)
                    return
                if server.mode == "error":
                    self._reply(500, b'{"error": "boom"}')
                    return
                if server.redirect_to is not None:
                    self._reply(302, b"", location=server.redirect_to)
                    return
                if self.path != server.path:
                    self._reply(404, b'{"error": "not found"}')
                    return
                body = server.raw_body if server.raw_body is not None else json.dumps({"keys": server.keys}).encode()
                self._reply(200, body)

            def _reply(self, status: int, body: bytes, location: str | None = None) -> None:
                self.send_response(status)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        return Handler


def refused_url() -> str:
    """A URL on a local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return f"http://127.0.0.1:{port}/.well-known/jwks.json"
