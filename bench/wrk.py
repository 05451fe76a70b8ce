"""Run wrk with a generated Lua script and read the JSON its `done()` callback prints."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MARKER = "BENCH_JSON "
SOCKET_ERRORS = ("connect", "read", "write", "timeout")


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "bench: wrk is not installed. Install it (Debian/Ubuntu: `sudo apt-get install wrk`, "
            "macOS: `brew install wrk`) and run again."
        )
    return path


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    latency_ms: dict[str, float]  # min, mean, max, stdev, p50, p90, p99, p999
    errors: dict[str, int]  # wrk's socket errors (connect/read/write/timeout) and status (>= 400)
    statuses: dict[str, int]  # exact status code -> responses, counted in Lua `response()`

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def socket_errors(self) -> int:
        return sum(self.errors.get(name, 0) for name in SOCKET_ERRORS)

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not status.startswith("2"))

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"rps": round(self.rps, 1), "non_2xx": self.non_2xx, "socket_errors": self.socket_errors}


def parse(output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line.removeprefix(MARKER))
            return WrkResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                latency_ms={name: round(value / 1000, 3) for name, value in data["latency_us"].items()},
                errors={name: int(value) for name, value in data["errors"].items()},
                statuses={str(status): int(count) for status, count in data["statuses"].items()},
            )
    raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{output[-2000:]}")


def run(
    wrk: str, script: Path, url: str, *, threads: int, connections: int, seconds: float, timeout: float = 10.0
) -> WrkResult:
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        str(script),
        url,
    ]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout + 60, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip() or completed.stdout}")
    return parse(completed.stdout)
