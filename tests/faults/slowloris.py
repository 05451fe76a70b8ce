"""Slow clients as an attacker runs them: `python -m tests.faults.slowloris --port P --token T`.

Keeps `--connections` connections open against 127.0.0.1:P, half sending a request's headers a
byte at a time, half sending complete headers (authenticated POST /api/todos) and then the body a
byte at a time; each reconnects as soon as the server closes it. Prints `ready` once every
connection is open, and on SIGTERM one JSON line: how many connections were opened and closed by
the server, after how long, and with what first bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field

import orjson

FILLER = 60_000  # more bytes than a deadline lets a dribbler send; under MAX_BODY_BYTES (no 413)


def slow_headers() -> bytes:
    return b"GET /api/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * FILLER


def slow_body(token: str) -> tuple[bytes, bytes]:
    head = (
        "POST /api/todos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {FILLER}\r\n\r\n"
    ).encode()
    return head, b" " * FILLER


@dataclass
class Stats:
    wanted: int
    all_open: asyncio.Event = field(default_factory=asyncio.Event)
    opened: int = 0
    closed_after: list[float] = field(default_factory=list)
    first_bytes: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        closed = sorted(self.closed_after)
        return {
            "opened": self.opened,
            "closed_by_server": len(closed),
            "closed_after_min": round(closed[0], 2) if closed else None,
            "closed_after_median": round(statistics.median(closed), 2) if closed else None,
            "closed_after_max": round(closed[-1], 2) if closed else None,
            "first_bytes": self.first_bytes,
        }


async def dribble(port: int, head: bytes, payload: bytes, interval: float, stats: Stats, stop: asyncio.Event) -> None:
    """One attacker connection after another: send `head` at once, then `payload` byte by byte."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(interval)
            continue
        opened = time.monotonic()
        stats.opened += 1
        if stats.opened >= stats.wanted:
            stats.all_open.set()
        writer.write(head)
        answer = asyncio.create_task(reader.read(64))
        for index in range(len(payload)):
            if answer.done() or stop.is_set():
                break
            writer.write(payload[index : index + 1])
            await asyncio.wait({answer}, timeout=interval)
        if answer.done() and not answer.exception():
            stats.closed_after.append(time.monotonic() - opened)
            first = answer.result()[:12].decode("latin-1") or "(closed)"
            stats.first_bytes[first] = stats.first_bytes.get(first, 0) + 1
        answer.cancel()
        writer.close()


async def main(port: int, token: str, connections: int, interval: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    stats = Stats(wanted=connections)
    body_head, body = slow_body(token)
    tasks = [
        asyncio.create_task(dribble(port, b"", slow_headers(), interval, stats, stop))
        if index % 2
        else asyncio.create_task(dribble(port, body_head, body, interval, stats, stop))
        for index in range(connections)
    ]
    await stats.all_open.wait()
    print("ready", flush=True)
    await stop.wait()
    await asyncio.wait(tasks, timeout=5)
    print(orjson.dumps(stats.summary()).decode(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between two bytes")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.token, args.connections, args.interval))
    sys.exit(0)
