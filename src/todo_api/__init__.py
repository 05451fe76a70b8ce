"""todo-api: a multi-user Todo REST API (FastAPI, SQLModel, PostgreSQL, JWT resource server)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("todo-api")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
