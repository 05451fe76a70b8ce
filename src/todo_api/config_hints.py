"""Warnings about a configuration that is valid but probably not what was meant, one line each,
logged when the server starts (`serve`, `dev`): a variable that looks like a misspelt setting (it
is silently ignored otherwise), and a JWKS key source that accepts tokens from any issuer or for
any audience. Lines name variables, never their values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values

from todo_api.config import Settings

# Names other software or documentation uses for a todo-api setting.
SYNONYMS = {
    "JWKS_URL": "JWT_JWKS_URL",
    "JWKS_URI": "JWT_JWKS_URL",
    "JWT_JWKS_URI": "JWT_JWKS_URL",
    "JWT_JWKS_ENDPOINT": "JWT_JWKS_URL",
    "JWT_SECRET_KEY": "JWT_SECRET",
    "JWT_ISS": "JWT_ISSUER",
    "JWT_AUD": "JWT_AUDIENCE",
    "DATABASE_URI": "DATABASE_URL",
    "DB_URL": "DATABASE_URL",
    "DB_URI": "DATABASE_URL",
    "POSTGRES_URL": "DATABASE_URL",
    "POSTGRESQL_URL": "DATABASE_URL",
    "REDIS_URI": "REDIS_URL",
}
# Unknown names under these prefixes belong to nobody else: surely meant for todo-api.
OWN_PREFIXES = ("JWT_", "JWKS_", "CURSOR_")


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def meant_setting(name: str, known: Iterable[str]) -> str | None:
    """The setting `name` (not itself a setting) was probably meant to be, if any."""
    name = name.upper()
    if name in SYNONYMS:
        return SYNONYMS[name]
    close = [setting for setting in known if _distance(name, setting) <= (1 if len(setting) < 10 else 2)]
    return min(close, key=lambda setting: _distance(name, setting)) if close else None


def misspelt_settings(names: Iterable[str], origin: str) -> list[str]:
    known = {name.upper() for name in Settings.model_fields}
    hints = []
    for name in sorted(set(names)):
        if name.upper() in known:
            continue
        meant = meant_setting(name, known)
        if meant is not None:
            hints.append(f"{name} ({origin}) is not a todo-api setting and is ignored: did you mean {meant}?")
        elif name.upper().startswith(OWN_PREFIXES):
            hints.append(f"{name} ({origin}) is not a todo-api setting and is ignored (see .env.example)")
    return hints


def hints(settings: Settings, environ: Mapping[str, str], env_file: Path | None = Path(".env")) -> list[str]:
    lines = misspelt_settings(environ, "environment")
    if env_file is not None and env_file.is_file():
        lines += misspelt_settings(dotenv_values(env_file), str(env_file))
    unchecked = [
        name
        for name, value in (("JWT_ISSUER", settings.jwt_issuer), ("JWT_AUDIENCE", settings.jwt_audience))
        if not value
    ]
    if settings.jwt_jwks_url is not None and unchecked:
        lines.append(
            f"JWT_JWKS_URL is set without {' and '.join(unchecked)}: tokens signed by those keys are accepted "
            "whatever their issuer or audience (set both in production)"
        )
    return lines
