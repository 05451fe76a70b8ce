"""The relay (`bench.pgproxy`) as a child process: start it, point a server's DATABASE_URL at it,
read its counters, stop it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench import REPO_ROOT
from bench.pg import libpq_url

START_TIMEOUT_SECONDS = 30.0


def proxied_url(database_url: str, port: int) -> str:
    """The same database through the relay on 127.0.0.1:`port`, without TLS (the relay parses the
    protocol; on loopback there is nothing to protect)."""
    url = make_url(libpq_url(database_url))
    query = {key: value for key, value in url.query.items() if key not in {"host", "port", "sslmode"}}
    return (url.set(host="127.0.0.1", port=port, query=query | {"sslmode": "disable"})).render_as_string(
        hide_password=False
    )


@dataclass
class Relay:
    process: subprocess.Popen[bytes]
    port: int
    control_port: int
    delay_ms: float

    @classmethod
    def start(cls, database_url: str, delay_ms: float, log_path: Path) -> Relay:
        argv = [sys.executable, "-m", "bench.pgproxy", "--upstream", libpq_url(database_url)]
        argv += ["--delay-ms", str(delay_ms)]
        with log_path.open("ab") as log:
            process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        assert process.stdout is not None
        try:
            line = _readline(process, START_TIMEOUT_SECONDS)
            ports = json.loads(line)
        except (TimeoutError, ValueError) as exc:
            process.kill()
            raise RuntimeError(f"bench.pgproxy did not start: {exc}; see {log_path}") from None
        return cls(process, int(ports["port"]), int(ports["control_port"]), delay_ms)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url_for(self, database_url: str) -> str:
        return proxied_url(database_url, self.port)

    def counters(self) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as connection:
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
        result: dict[str, Any] = json.loads(data)
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _readline(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no output within {timeout:g} s")
    return process.stdout.readline()


def per_request(before: dict[str, Any], after: dict[str, Any], requests: int) -> dict[str, Any]:
    """Round trips, turns and relay CPU per request between two counter snapshots."""
    n = max(requests, 1)
    return {
        "round_trips": round((after["round_trips"] - before["round_trips"]) / n, 2),
        "turns": round((after["turns"] - before["turns"]) / n, 2),
        "messages": {
            kind: round((count - before["messages"].get(kind, 0)) / n, 2) for kind, count in after["messages"].items()
        },
        "relay_cpu_us": round((after["cpu_seconds"] - before["cpu_seconds"]) / n * 1e6),
        "lateness_us": after["lateness_us"],
    }
