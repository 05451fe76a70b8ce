"""Batched commands: an offline client's queue in one request, in one transaction, each command in
its own savepoint (a failing command is rolled back alone and reported; the others stand).

Each applied command's result is stored under (user, command uuid) in the idempotency table, in
the same transaction, for IDEMPOTENCY_RETENTION_HOURS: a client that timed out resends the whole
queue and gets the stored results of what was applied, and the rest applied now. A command that
failed is not stored (nothing was applied): resent, it runs again. The same uuid with another
command is 422 for that command (`idempotency_key_reused`); while another batch holding that uuid
is in flight, 409 (`idempotency_in_flight`). Result keys are `batch <uuid>`: with a space, which
no `Idempotency-Key` header can hold, so the two never meet.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from fastapi import Response
from sqlmodel import Session

from todo_api.batch.commands import HANDLERS, Limits
from todo_api.batch.schemas import ADDS, BatchRequest, Command
from todo_api.errors import AppError, IdempotencyKeyReused, InvalidInput
from todo_api.http.errors import json_safe
from todo_api.idempotency import IdempotencyStore, KeyInFlight
from todo_api.pagination import MaybeEmpty
from todo_api.sealed import Sealer
from todo_api.sync import service as sync

KEY_PREFIX = "batch "
REFERENCES = ("id", "list_id", "parent_id", "after_id")  # arguments that may name an earlier command's temp_id


@dataclass(frozen=True, slots=True)
class BatchSettings:
    limits: Limits
    retention: timedelta
    sealer: Sealer


def _fingerprint(command: Command) -> str:
    sent = command.model_dump(mode="json", exclude={"uuid"})
    return hashlib.sha256(orjson.dumps(sent, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _resolved(args: Mapping[str, Any], mapping: Mapping[str, uuid.UUID]) -> dict[str, Any]:
    resolved = dict(args)
    for name in REFERENCES:
        value = resolved.get(name)
        if isinstance(value, str) and value in mapping:
            resolved[name] = str(mapping[value])
    return resolved


def _error(command: Command, exc: AppError) -> dict[str, Any]:
    body = {"detail": json_safe(exc.detail), "code": exc.code.value}
    return {"uuid": str(command.uuid), "status": exc.status_code, "error": body}


def _misplaced_temp_id(index: int, command: Command, mapping: Mapping[str, uuid.UUID]) -> InvalidInput | None:
    """A `temp_id` names one add of this batch: on another command, or named twice, it is 422."""
    if command.temp_id is None:
        return None
    loc = ("body", "commands", index, "temp_id")
    if command.type not in ADDS:
        return InvalidInput(loc, "temp_id is only for todo_add and list_add", command.temp_id)
    if command.temp_id in mapping:
        return InvalidInput(loc, "temp_id already names an earlier command of this batch", command.temp_id)
    return None


def _remember(command: Command, result: Mapping[str, Any], mapping: dict[str, uuid.UUID]) -> None:
    if command.type in ADDS and command.temp_id is not None and result.get("status") == 201:
        mapping[command.temp_id] = uuid.UUID(result["resource"]["id"])


def _apply(session: Session, user_id: uuid.UUID, command: Command, args: dict[str, Any], limits: Limits) -> Any:
    """The command in a savepoint: on an error, its effects (and only its) are rolled back."""
    with session.begin_nested():
        outcome = HANDLERS[command.type](session, user_id, args, limits)
    result: dict[str, Any] = {"uuid": str(command.uuid), "status": outcome.status}
    if outcome.resource is not None:
        result["resource"] = outcome.resource.model_dump(mode="json")
    return result


def _run_command(
    session: Session,
    user_id: uuid.UUID,
    index: int,
    command: Command,
    mapping: dict[str, uuid.UUID],
    settings: BatchSettings,
) -> dict[str, Any]:
    misplaced = _misplaced_temp_id(index, command, mapping)
    if misplaced is not None:
        return _error(command, misplaced)
    store = IdempotencyStore(session, user_id, settings.retention)
    key, fingerprint = KEY_PREFIX + str(command.uuid), _fingerprint(command)
    if not store.lock(key):
        return _error(command, KeyInFlight())
    stored = store.find(key)
    if stored is not None:
        if stored.request_hash != fingerprint:
            loc = ("body", "commands", index, "uuid")
            return _error(
                command, IdempotencyKeyReused(loc, "This uuid was already used for another command", str(command.uuid))
            )
        replayed: dict[str, Any] = orjson.loads(stored.body)
        _remember(command, replayed, mapping)
        return replayed
    try:
        result: dict[str, Any] = _apply(session, user_id, command, _resolved(command.args, mapping), settings.limits)
    except AppError as exc:
        if exc.status_code >= 500:  # the account is gone, a dependency is down: the whole batch
            raise
        return _error(command, exc)
    store.save(key, fingerprint, Response(orjson.dumps(result), status_code=result["status"]))
    _remember(command, result, mapping)
    return result


@dataclass(frozen=True, slots=True)
class BatchOutcome(MaybeEmpty):
    """The response as JSON; `found_nothing` when a command failed (a 4xx result): run as a
    worker's cached user id, that could be a deleted account's (`auth.current.CurrentUser`)."""

    body: bytes
    found_nothing: bool


def run_batch(session: Session, user_id: uuid.UUID, request: BatchRequest, settings: BatchSettings) -> BatchOutcome:
    """Every command in order, one result each."""
    token = sync.token_now(session, user_id, request.sync_token, settings.sealer)  # a bad token: nothing runs
    mapping: dict[str, uuid.UUID] = {}
    results = [
        _run_command(session, user_id, index, command, mapping, settings)
        for index, command in enumerate(request.commands)
    ]
    document = {"results": results, "temp_id_mapping": mapping, "sync_token": token}
    failed = any(result["status"] >= 400 for result in results)
    return BatchOutcome(orjson.dumps(document), found_nothing=failed)
