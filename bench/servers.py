"""Server processes under test: start, wait until they answer, find their workers, stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import REPO_ROOT
from todo_api.config import Settings

READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0
SAMPLE_INTERVAL_SECONDS = 0.5
IDLE_WINDOW_SECONDS, IDLE_SHARE = 0.3, 0.05


class StartFailed(RuntimeError):
    """A server exited or did not answer in time."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any todo-api setting (a developer's shell must not leak
    into the measurement), plus `extra`."""
    settings = {name.upper() for name in Settings.model_fields}
    env = {name: value for name, value in os.environ.items() if name.upper() not in settings}
    env.update(extra)
    return env


def compile_bytecode() -> None:
    """Compile this environment's modules once, as a deployment image would. Without `.pyc` files
    (`uv sync` does not write them; `PYTHONDONTWRITEBYTECODE` stops Python from caching them) each
    worker compiles every module it imports, ~7 s of CPU here, and uvicorn kills a worker that is
    not ready within 5 s. Up-to-date files are skipped, so later runs pay almost nothing."""
    paths = {
        sysconfig.get_path("purelib"),
        sysconfig.get_path("platlib"),
        str(REPO_ROOT / "src"),
        str(REPO_ROOT / "bench"),
    }
    argv = [sys.executable, "-m", "compileall", "-q", "-j", "0", *sorted(paths)]
    subprocess.run(argv, capture_output=True, check=False)  # a stray unparsable file must not stop the run


def executable(name: str) -> str:
    """A console script of this environment (`todo-api`), next to the running interpreter."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes have used so far (`/proc/<pid>/stat` utime, stime)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_idle(pids: Sequence[int], timeout: float = 60.0) -> float:
    """Wait until the processes have stopped working (less than `IDLE_SHARE` of a core over
    `IDLE_WINDOW_SECONDS`); the seconds waited. wrk abandons its connections at the end of a run with
    requests still queued in the server, which then serves them: without this, the next run's CPU
    and round trips would include that backlog (at 64 connections and 50 req/s, more than its own)."""
    started = time.monotonic()
    before = cpu_seconds(pids)
    while time.monotonic() - started < timeout:
        time.sleep(IDLE_WINDOW_SECONDS)
        now = cpu_seconds(pids)
        if now - before < IDLE_SHARE * IDLE_WINDOW_SECONDS:
            break
        before = now
    return time.monotonic() - started


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in KiB: current and peak resident set size."""
    try:
        lines = (Path("/proc") / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            values[name] = int(rest.split()[0])
    return (values["VmRSS"], values["VmHWM"]) if len(values) == 2 else None


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (multiprocessing `spawn_main` children of the supervisor); with
        `--workers 1` uvicorn serves from the process itself."""
        spawned = [pid for pid in _children(self.process.pid) if "spawn_main" in _cmdline(pid)]
        return spawned or [self.process.pid]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what we started
            self.process.wait()


def start(name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, port: int, workers: int) -> ServerProcess:
    """Launch `argv` (in its own session, output to `<cwd>/<name>.log`) and wait until every worker
    is up and the server answers HTTP."""
    log_path = cwd / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ServerProcess(name, process, port, log_path)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StartFailed(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
            try:
                client.get(f"{server.base_url}/__bench_ready")
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if len(server.worker_pids()) >= workers:
                return server
            time.sleep(0.2)
    server.stop()
    raise StartFailed(f"{name} did not become ready within {READY_TIMEOUT_SECONDS:g} s:\n{server.log_tail()}")


@dataclass
class RssSampler:
    """Samples VmRSS of every worker of the given servers in a background thread; also keeps the
    kernel's own high-water mark (VmHWM), so short peaks between samples are not missed."""

    servers: Sequence[ServerProcess]
    peaks_kib: dict[str, dict[int, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for server in self.servers:
            peaks = self.peaks_kib.setdefault(server.name, {})
            for pid in server.worker_pids():
                memory = memory_kib(pid)
                if memory is not None:
                    peaks[pid] = max(peaks.get(pid, 0), *memory)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_SECONDS):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def peak_mib(self) -> dict[str, list[float]]:
        return {name: [round(kib / 1024, 1) for kib in peaks.values()] for name, peaks in self.peaks_kib.items()}
