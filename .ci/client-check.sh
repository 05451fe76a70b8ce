#!/usr/bin/env bash
# The client check (README, "Generated clients"): generate a TypeScript client from `todo-api
# openapi` (openapi-typescript), type-check clients/typescript/src/flow.ts against it under
# `strict` (a contract change that breaks typed clients fails here), and lint the document with
# Redocly (`recommended-strict`) and Spectral (`spectral:oas`, failing on warnings).
# Usage: .ci/client-check.sh [uv]   (run from anywhere; the tools are pinned in package-lock.json)
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${1:-uv}"
CLIENT=clients/typescript

if ! command -v npm >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ]; then
        echo "client check: npm is missing; CI must run this check (Node.js >= 20.19 and npm)" >&2
        exit 1
    fi
    echo "client check SKIPPED: npm is not installed (Node.js >= 20.19 and npm run it)" >&2
    exit 0
fi

# node_modules, installed by `npm ci` once per package-lock.json into a cache outside the clone
# (CI works in a fresh clone every time) and linked in: seconds instead of ~30 s.
lock_hash="$(sha256sum "$CLIENT/package-lock.json" | cut -c1-16)"
cache="${TODO_API_CI_CACHE:-/var/cache/todo-api-ci}/npm-client-check-$lock_hash"
if [ ! -d "$cache/node_modules" ]; then
    if mkdir -p "$(dirname "$cache")" 2>/dev/null && [ -w "$(dirname "$cache")" ]; then
        staging="$(mktemp -d "$(dirname "$cache")/.npm-staging.XXXXXX")"
        cp "$CLIENT/package.json" "$CLIENT/package-lock.json" "$staging/"
        (cd "$staging" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
        mv -T "$staging" "$cache" 2>/dev/null || rm -rf "$staging"  # another run got there first
    else
        cache=""  # no writable cache: install in place
    fi
fi
if [ -n "$cache" ]; then
    [ -L "$CLIENT/node_modules" ] || rm -rf "$CLIENT/node_modules"
    ln -sfn "$cache/node_modules" "$CLIENT/node_modules"
else
    (cd "$CLIENT" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

mkdir -p "$CLIENT/generated"
"$UV" run todo-api openapi > "$CLIENT/generated/openapi.json"
cd "$CLIENT"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true DO_NOT_TRACK=1  # no usage reports, no update checks
npm run --silent generate
npm run --silent typecheck
npm run --silent lint
echo "client check passed: TypeScript client generated and type-checked; Redocly and Spectral clean"
