"""A PostgreSQL relay that delays every chunk a fixed time each way and counts round trips.

This machine's kernel has no `netem` qdisc (`CONFIG_NET_SCH_NETEM` is not set and there are no
modules to load), so the remote-database scenario delays traffic here instead: every chunk read
from either side is written to the other side `--delay-ms` later, in order. A `timerfd` (ns
resolution) wakes the loop, not asyncio's own timers (epoll timeouts round to whole ms).

It also counts the frontend messages the clients send. A simple Query ('Q') and an extended-protocol
Sync ('S') each end a request the client then waits for: one round trip each. todo-api pipelines a
transaction's `BEGIN`, its statement timeout and its first statement behind one Sync, so that is
one round trip too; the floor does not pipeline. As a cross-check it counts turns: client data that
arrives after the server has spoken on that connection.

Run by the benchmark as `python -m bench.pgproxy --upstream URL --delay-ms 1`; it prints one JSON
line (`{"port": …, "control_port": …}`), and every connection to the control port receives the
counters as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter, deque
from typing import Any, cast

import uvloop
from psycopg.conninfo import conninfo_to_dict

PROTOCOL_3 = 196608  # StartupMessage; SSLRequest, GSSENCRequest and CancelRequest use other codes
ROUND_TRIP_MESSAGES = ("Q", "S")
MAX_SAMPLES = 200_000


class ClientParser:
    """Splits the frontend byte stream into messages, whatever the chunking; counts their types."""

    __slots__ = ("header", "skip", "typed")

    def __init__(self) -> None:
        self.typed = False  # after the StartupMessage every message starts with a type byte
        self.header = b""
        self.skip = 0

    def feed(self, data: bytes, counts: Counter[str]) -> None:
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                taken = min(self.skip, n - i)
                self.skip -= taken
                i += taken
                continue
            need = 5 if self.typed else 8
            taken = min(need - len(self.header), n - i)
            self.header += data[i : i + taken]
            i += taken
            if len(self.header) < need:
                return
            if self.typed:
                counts[chr(self.header[0])] += 1
                self.skip = int.from_bytes(self.header[1:5]) - 4
            else:
                self.skip = int.from_bytes(self.header[:4]) - 8
                self.typed = int.from_bytes(self.header[4:8]) == PROTOCOL_3
            self.header = b""


class Link:
    """One client connection and its upstream connection."""

    __slots__ = ("backlog", "client", "parser", "server_spoke", "upstream")

    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.backlog: list[bytes | None] = []  # client data due before the upstream connected
        self.parser = ClientParser()
        self.server_spoke = False

    def write(self, to_upstream: bool, data: bytes | None) -> None:
        if to_upstream and self.upstream is None:
            self.backlog.append(data)
            return
        target = self.upstream if to_upstream else self.client
        assert target is not None
        if data is None:
            target.close()
        elif not target.is_closing():
            target.write(data)


class Proxy:
    def __init__(self, upstream: dict[str, Any], delay_ns: int) -> None:
        self.upstream = upstream
        self.delay_ns = delay_ns
        self.queue: deque[tuple[int, Link, bool, bytes | None]] = deque()
        self.timer = os.timerfd_create(time.CLOCK_MONOTONIC, flags=os.TFD_NONBLOCK | os.TFD_CLOEXEC)
        self.messages: Counter[str] = Counter()
        self.stats = Counter[str]()
        self.lateness_ns: list[int] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.timer, self._fire)

    def send(self, link: Link, to_upstream: bool, data: bytes | None) -> None:
        """From one side to the other, `delay_ns` from now (in order: every item waits as long)."""
        if data is not None:
            self.stats["bytes_up" if to_upstream else "bytes_down"] += len(data)
        if not self.delay_ns:
            link.write(to_upstream, data)
            return
        due = time.monotonic_ns() + self.delay_ns
        if not self.queue:
            os.timerfd_settime_ns(self.timer, flags=os.TFD_TIMER_ABSTIME, initial=due)
        self.queue.append((due, link, to_upstream, data))

    def _fire(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the loop may call us before the timer expired
            os.read(self.timer, 8)
        now = time.monotonic_ns()
        queue, samples = self.queue, self.lateness_ns
        while queue and queue[0][0] <= now:
            due, link, to_upstream, data = queue.popleft()
            if len(samples) < MAX_SAMPLES:
                samples.append(now - due)
            link.write(to_upstream, data)
        if queue:
            os.timerfd_settime_ns(self.timer, flags=os.TFD_TIMER_ABSTIME, initial=queue[0][0])

    def from_client(self, link: Link, data: bytes) -> None:
        if link.server_spoke and link.parser.typed:
            self.stats["turns"] += 1
        link.server_spoke = False
        link.parser.feed(data, self.messages)
        self.send(link, True, data)

    def from_server(self, link: Link, data: bytes) -> None:
        link.server_spoke = True
        self.send(link, False, data)

    async def connect(self, link: Link) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.upstream.get("host") or "localhost", int(self.upstream.get("port") or 5432)
        try:
            if host.startswith("/"):
                transport, _ = await loop.create_unix_connection(
                    lambda: UpstreamSide(self, link), f"{host}/.s.PGSQL.{port}"
                )
            else:
                transport, _ = await loop.create_connection(lambda: UpstreamSide(self, link), host, port)
        except OSError:
            link.client.close()
            return
        link.upstream = transport
        for data in link.backlog:
            link.write(True, data)
        link.backlog.clear()

    def snapshot(self) -> dict[str, Any]:
        samples, self.lateness_ns = self.lateness_ns, []
        late = sorted(samples)
        return {
            "connections": self.stats["connections"],
            "round_trips": sum(self.messages[kind] for kind in ROUND_TRIP_MESSAGES),
            "turns": self.stats["turns"],
            "messages": dict(self.messages),
            "bytes_up": self.stats["bytes_up"],
            "bytes_down": self.stats["bytes_down"],
            "cpu_seconds": time.process_time(),
            "delay_ms": self.delay_ns / 1e6,
            # how much later than due each chunk left, since the previous snapshot
            "lateness_us": {
                "samples": len(late),
                "mean": round(statistics.fmean(late) / 1000, 1) if late else None,
                "p50": round(late[len(late) // 2] / 1000, 1) if late else None,
                "p99": round(late[int(len(late) * 0.99)] / 1000, 1) if late else None,
                "max": round(late[-1] / 1000, 1) if late else None,
            },
        }


class ClientSide(asyncio.Protocol):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.link: Link | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link = Link(cast(asyncio.Transport, transport))
        self.proxy.stats["connections"] += 1
        self._task = asyncio.get_running_loop().create_task(self.proxy.connect(self.link))

    def data_received(self, data: bytes) -> None:
        assert self.link is not None
        self.proxy.from_client(self.link, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link is not None:
            self.proxy.send(self.link, True, None)


class UpstreamSide(asyncio.Protocol):
    def __init__(self, proxy: Proxy, link: Link) -> None:
        self.proxy = proxy
        self.link = link

    def data_received(self, data: bytes) -> None:
        self.proxy.from_server(self.link, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy.send(self.link, False, None)


class Control(asyncio.Protocol):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        writer.write(json.dumps(self.proxy.snapshot()).encode() + b"\n")
        writer.close()


async def serve(upstream_url: str, delay_ms: float) -> None:
    loop = asyncio.get_running_loop()
    proxy = Proxy(conninfo_to_dict(upstream_url), round(delay_ms * 1e6))
    proxy.start(loop)
    server = await loop.create_server(lambda: ClientSide(proxy), "127.0.0.1", 0)
    control = await loop.create_server(lambda: Control(proxy), "127.0.0.1", 0)
    ports = {"port": server.sockets[0].getsockname()[1], "control_port": control.sockets[0].getsockname()[1]}
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()
    control.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pgproxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="libpq URL of the PostgreSQL server")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay of every chunk, each way (0)")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    uvloop.run(serve(args.upstream, args.delay_ms))


if __name__ == "__main__":
    main()
