"""Schemathesis hooks for the contract run (`tests/test_contract.py`), one per decision.

Schemathesis only knows the OpenAPI document. Some schema-valid values are necessarily refused by
*this* user's data, not by the contract: a well-formed but unknown `list_id` in a todo body is a 422
("List not found"), and a well-formed but forged `cursor` is a 422 ("Invalid cursor"). Rather than
accept 422 as "positive data accepted" for whole operations (which would hide a real wrong 422), each
hook below rewrites only the one value that cannot be known, only for the operations that take it,
and only when the generated value is schema-valid (so negative cases stay negative).

Each hook is a pure function of the generated case (no randomness of its own), so Hypothesis can
replay and shrink cases. Hooks and auth providers are registered on the
contract schema object, never globally.

Schemathesis builds the coverage-phase cases (hooks and auth included) when pytest collects the
tests, before any fixture runs. So everything the hooks hand out is fixed at import: the ids (written
by `KnownIds.seed` before each operation's run) and the tokens, signed with a key of this module that
the contract app is configured to trust.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

import fractional_indexing
import schemathesis
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.keys import ISSUER, Signer, new_key, public_pem
from todo_api.models import metadata
from todo_api.pagination import CURSOR_MAX_LENGTH  # the schema's `maxLength` for `cursor`
from todo_api.planner.recurrence import MAX_TIME_ZONE_LENGTH
from todo_api.planner.reminders import DURATION_PATTERN
from todo_api.planner.rules import MAX_RULE_LENGTH
from todo_api.todos.planner_fields import RULE_PATTERN, TIME_ZONE_PATTERN

# JSON Schema `format: uuid` (RFC 4122 text form). Python's `uuid.UUID` also accepts braces, URNs
# and unhyphenated hex, which the schema does not; those are negative data and are left alone.
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

TODO_WRITES = ["POST /api/todos", "PUT /api/todos/{todo_id}", "PATCH /api/todos/{todo_id}"]
TODO_MOVE = "POST /api/todos/{todo_id}/move"
LIST_MOVE = "POST /api/lists/{list_id}/move"
TODO_COMPLETIONS = "GET /api/todos/{todo_id}/completions"
REMINDERS = "GET /api/reminders"
# Values the parsers accept (the document outlines them with patterns; the parsers decide).
RULES = ("FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10", "FREQ=MONTHLY;BYMONTHDAY=-1", "FREQ=YEARLY;UNTIL=20400101")
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
DURATIONS = ("PT15M", "PT1H30M", "P1D", "P1W")
RECURRING_DUE = "2030-01-31T09:00:00Z"
PAGED_READS = ["GET /api/todos", "GET /api/lists", "GET /api/trash", TODO_COMPLETIONS, REMINDERS]
SYNC_TOKEN_TAKERS = ["GET /api/sync", "POST /api/batch"]
TODO_BY_ID = ["GET /api/todos/{todo_id}", "PUT /api/todos/{todo_id}", "PATCH /api/todos/{todo_id}"]
TODO_BY_ID += [TODO_MOVE, TODO_COMPLETIONS]
LIST_BY_ID = ["GET /api/lists/{list_id}", "PUT /api/lists/{list_id}", "PATCH /api/lists/{list_id}", LIST_MOVE]
CONDITIONAL_WRITES = [
    f"{method} /api/{kind}/{{{kind[:-1]}_id}}" for kind in ("todos", "lists") for method in ("PUT", "PATCH", "DELETE")
]
IDEMPOTENT_CREATES = ["POST /api/todos", "POST /api/lists"]
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # the schema's pattern for `Idempotency-Key`

type Case = schemathesis.Case[Any]

USERS, LISTS, TODOS = (metadata.tables[name] for name in ("users", "lists", "todos"))
ID_NAMESPACE = uuid.UUID("5c4e3a1e-0b7d-4c3a-9f2e-6a1b2c3d4e5f")

# Tokens are minted once, at import, so they outlive any test session (a suite never runs a day).
TOKEN_TTL = 24 * 3600
SIGNING_KEY = new_key("ed25519")
PUBLIC_KEY = public_pem(SIGNING_KEY)  # configure the contract app with this as `jwt_public_key`
USER_SUBJECT = "contract|user"
USER_TOKEN = Signer(SIGNING_KEY, "EdDSA").token(USER_SUBJECT, ttl=TOKEN_TTL)
LEAVER_TOKEN = Signer(SIGNING_KEY, "EdDSA").token("contract|leaver", ttl=TOKEN_TTL)

KEEP = None  # in a pool of replacement ids: keep the generated (random, hence unknown) id
LEAVER_OPERATION = "DELETE /api/users/me"


def schema_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, str) and UUID_PATTERN.fullmatch(value):
        return uuid.UUID(value)
    return None


def pick[T](value: uuid.UUID, pool: Sequence[T]) -> T:
    """A deterministic choice from `pool`, spread evenly over random uuids."""
    return pool[value.int % len(pool)]


def _fixed_id(name: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class KnownIds:
    """The test user's resources, with ids fixed in advance (`seed` writes them before each
    operation's run; the database is emptied after each test).

    `lists`/`todos` are only ever read or changed by the run (never deleted), so they exist for the
    whole run. `doomed_lists`/`doomed_todos` are what DELETE cases get: the first DELETE of each
    answers 204, later ones 404; both are in the contract.
    """

    user: str = _fixed_id("user")
    lists: tuple[str, ...] = tuple(_fixed_id(f"list {n}") for n in range(2))
    todos: tuple[str, ...] = tuple(_fixed_id(f"todo {n}") for n in range(3))
    parent: str = _fixed_id("parent")  # the only todo the run places others under (never moved itself)
    doomed_lists: tuple[str, ...] = tuple(_fixed_id(f"doomed list {n}") for n in range(8))
    doomed_todos: tuple[str, ...] = tuple(_fixed_id(f"doomed todo {n}") for n in range(8))
    trashed_todos: tuple[str, ...] = tuple(_fixed_id(f"trashed todo {n}") for n in range(8))

    async def seed(self, connection: AsyncConnection) -> None:
        """The user row (found again by issuer and subject on its first request) and its data."""
        await connection.execute(insert(USERS).values(id=self.user, issuer=ISSUER, subject=USER_SUBJECT))
        lists = [{"name": f"Kept {n}", "id": id_} for n, id_ in enumerate(self.lists)]
        lists += [{"name": f"Doomed {n}", "id": id_} for n, id_ in enumerate(self.doomed_lists)]
        keys = fractional_indexing.generate_n_keys_between(None, None, len(lists))
        lists = [{**row, "position": key} for row, key in zip(lists, keys, strict=True)]
        await connection.execute(insert(LISTS), [{**row, "user_id": self.user} for row in lists])
        done = datetime(2029, 12, 31, tzinfo=UTC)
        todos: list[dict[str, Any]] = [
            {"id": self.todos[0], "title": "Plain"},
            {"id": self.todos[1], "title": "Listed", "list_id": self.lists[0], "tags": ["A"], "tag_keys": ["a"]},
            {"id": self.todos[2], "title": "Done", "completed": True, "completed_at": done, "due_at": done},
        ]
        todos += [
            {"id": id_, "title": f"Doomed {n}", "list_id": self.lists[1], "priority": 3}
            for n, id_ in enumerate(self.doomed_todos)
        ]
        todos += [{"id": id_, "title": f"Trashed {n}", "deleted_at": done} for n, id_ in enumerate(self.trashed_todos)]
        todos.append({"id": self.parent, "title": "Parent"})
        keys = iter(fractional_indexing.generate_n_keys_between(None, None, len(todos)))  # unique in any group
        todos = [{**row, "position": next(keys)} for row in todos]
        defaults: dict[str, Any] = {"list_id": None, "completed": False, "completed_at": None, "due_at": None}
        defaults |= {"deleted_at": None}
        defaults |= {"priority": 0, "tags": [], "tag_keys": []}
        await connection.execute(insert(TODOS), [{**defaults, **row, "user_id": self.user} for row in todos])


KNOWN = KnownIds()


# --- auth -----------------------------------------------------------------------------------------


def _set_bearer(case: Case, token: str) -> None:
    if case.headers is None:
        case.headers = {}
    case.headers["Authorization"] = f"Bearer {token}"


class UserToken:
    """Every case is sent with a real signed token of the contract user (schemathesis knows it is
    explicit auth, so its `ignored_auth` check also probes the same request without and with a
    wrong token)."""

    def get(self, case: Case, context: schemathesis.AuthContext) -> str:
        return USER_TOKEN

    def set(self, case: Case, data: str, context: schemathesis.AuthContext) -> None:
        _set_bearer(case, data)


class LeaverToken(UserToken):
    """`DELETE /api/users/me` deletes the caller's account and everything it owns, which would pull the
    known ids from under the run. It runs as a separate, throwaway user instead (same contract: 204;
    a later request provisions that user again, empty)."""

    def get(self, case: Case, context: schemathesis.AuthContext) -> str:
        return LEAVER_TOKEN


# --- hooks ----------------------------------------------------------------------------------------


def body_list_id(context: schemathesis.HookContext, case: Case) -> Case:
    """Todo writes: a schema-valid `list_id` becomes one of the user's lists or null.

    A random uuid is never one of the user's lists, so the app must answer 422 ("List not found",
    loc ["body","list_id"]) for schema-valid data; that rule has its own tests (test_isolation.py).
    Here the contract run exercises the accepted path instead.
    """
    body = case.body
    if isinstance(body, dict) and (generated := schema_uuid(body.get("list_id"))) is not None:
        body["list_id"] = pick(generated, [*KNOWN.lists, None])
    return case


def positive_cursor(context: schemathesis.HookContext, case: Case) -> Case:
    """Paged reads, positive cases only: drop a schema-valid `cursor`.

    A cursor is an opaque, checksummed token the server issued for this user and this exact query;
    any other string is refused with 422 ("Invalid cursor") by design. Negative cases keep theirs (a
    too-long cursor must still be refused); walks with real `next_cursor` values are tested in
    tests/test_isolation.py.
    """
    meta = case.meta
    cursor = case.query.get("cursor") if case.query else None
    positive = meta is not None and meta.generation.mode.is_positive
    if positive and isinstance(cursor, str) and len(cursor) <= CURSOR_MAX_LENGTH:
        del case.query["cursor"]
    return case


def positive_sync_token(context: schemathesis.HookContext, case: Case) -> Case:
    """Sync and batch, positive cases only: drop a schema-valid `sync_token` (a full sync, a batch
    token starting at the batch).

    Like a cursor, a sync token is sealed by the server for this user: any other string is 422
    (`invalid_sync_token`) by design; tests/test_sync.py and tests/hostile/test_offline.py cover
    real and forged tokens. Negative cases keep theirs (a too-long token must still be refused).
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if case.query and isinstance(case.query.get("sync_token"), str):
        del case.query["sync_token"]
    if isinstance(case.body, dict) and isinstance(case.body.get("sync_token"), str):
        del case.body["sync_token"]
    return case


def positive_if_match(context: schemathesis.HookContext, case: Case) -> Case:
    """Conditional writes, positive cases only: an `If-Match` becomes `*`.

    An entity tag is whatever the server last sent for the resource; an arbitrary string can only
    name a version that does not exist, so the app must answer 412 (documented) for schema-valid data.
    `*` ("any current version") keeps the conditional path exercised: 2xx on an existing resource,
    404 on an unknown one. Negative cases keep their header.
    """
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and isinstance(case.headers.get("If-Match"), str):
        case.headers["If-Match"] = "*"
    return case


def idempotency_key_per_body(context: schemathesis.HookContext, case: Case) -> Case:
    """Creates: a schema-valid `Idempotency-Key` becomes a digest of the request body.

    Reusing a key for a different request is refused with 422 by design, and generated keys repeat
    (`"0"`, `"00"`…) across different bodies. Deriving the key from the body keeps "same key" equal to
    "same request", so repeats exercise the replay path instead.
    """
    key = case.headers.get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        body = json.dumps(case.body, sort_keys=True, default=repr).encode()
        case.headers["Idempotency-Key"] = f"contract-{hashlib.sha256(body).hexdigest()}"
    return case


def _existing(case: Case, name: str, ids: Sequence[str]) -> Case:
    """Half the schema-valid ids name an existing resource; the other half stay random (404)."""
    generated = schema_uuid(case.path_parameters.get(name))
    if generated is not None and (replacement := pick(generated, [*ids, *[KEEP] * len(ids)])) is not KEEP:
        case.path_parameters[name] = replacement
    return case


def existing_todo(context: schemathesis.HookContext, case: Case) -> Case:
    """GET/PUT/PATCH a todo by id: also hit existing todos, so the 200 response schemas are checked,
    not only the 404 of an unknown id."""
    return _existing(case, "todo_id", KNOWN.todos)


def existing_list(context: schemathesis.HookContext, case: Case) -> Case:
    """As `existing_todo`, for lists."""
    return _existing(case, "list_id", KNOWN.lists)


def doomed_todo(context: schemathesis.HookContext, case: Case) -> Case:
    """DELETE a todo: also hit todos kept for deletion (204 once, then 404)."""
    return _existing(case, "todo_id", KNOWN.doomed_todos)


def doomed_list(context: schemathesis.HookContext, case: Case) -> Case:
    """As `doomed_todo`, for lists (their todos go with them)."""
    return _existing(case, "list_id", KNOWN.doomed_lists)


def trashed_todo(context: schemathesis.HookContext, case: Case) -> Case:
    """Restore or purge from the trash: also hit todos seeded in the trash (200 or 204 once, then
    404), so the restored todo's schema is checked, not only the 404 of an unknown id."""
    return _existing(case, "resource_id", KNOWN.trashed_todos)


def parent_and_list(context: schemathesis.HookContext, case: Case) -> Case:
    """Todo writes and moves: a schema-valid `parent_id` becomes the known parent or null, and a
    `list_id` sent with that parent becomes the parent's list (none).

    A random uuid is never one of the user's todos (422 "Parent not found", tested in
    test_planner_isolation.py); a parent in another list, a cycle or a fifth level are refused
    by design (test_subtasks.py). The known parent is never itself moved, so no case makes a cycle.
    """
    body = case.body
    if isinstance(body, dict) and (generated := schema_uuid(body.get("parent_id"))) is not None:
        body["parent_id"] = pick(generated, [KNOWN.parent, None])
        positive = case.meta is not None and case.meta.generation.mode.is_positive
        if positive and body["parent_id"] is not None and "list_id" in body:
            body["list_id"] = None
    return case


def _valid(value: Any, pattern: str, max_length: int) -> TypeGuard[str]:
    """A string the schema accepts (negative cases keep their invalid values)."""
    return isinstance(value, str) and 0 < len(value) <= max_length and re.fullmatch(pattern, value) is not None


def _reminders(body: dict[str, Any]) -> bool:
    """Rewrite schema-valid `before_due` durations to accepted ones (the pattern admits P999D and
    PT0S, which the parser refuses: at most 366 days, not zero); whether any is relative."""
    relative = False
    reminders = body.get("reminders")
    for reminder in reminders if isinstance(reminders, list) else []:  # negative cases send any JSON
        if isinstance(reminder, dict) and _valid(reminder.get("before_due"), DURATION_PATTERN, 64):
            reminder["before_due"] = DURATIONS[len(reminder["before_due"]) % len(DURATIONS)]
            relative = True
    return relative


def schedule(context: schemathesis.HookContext, case: Case) -> Case:
    """Todo writes: a schema-valid `recurrence` becomes a rule from `RULES` (on creates; null on
    PUT and PATCH), a schema-valid `time_zone` a zone from `ZONES`, and in positive cases a todo
    given a rule or a `before_due` reminder gets a due date (the rules' own cases are in
    tests/planner, tests/todos/test_recurring.py and tests/hostile/test_planner_inputs.py).

    The known todos never become recurring: a generated `due_at` can lie where a rule has no next
    occurrence (year 9999), which is a 422 by design for a recurring todo and not for others.
    """
    body = case.body
    if not isinstance(body, dict):
        return case
    creating = case.operation.label == "POST /api/todos"
    if _valid(rule := body.get("recurrence"), RULE_PATTERN, MAX_RULE_LENGTH):
        body["recurrence"] = RULES[len(rule) % len(RULES)] if creating else None
    if _valid(zone := body.get("time_zone"), TIME_ZONE_PATTERN, MAX_TIME_ZONE_LENGTH):
        body["time_zone"] = ZONES[len(zone) % len(ZONES)]
    relative = _reminders(body)
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and (body.get("recurrence") is not None or relative):
        body["due_at"] = RECURRING_DUE
    return case


def first_place(context: schemathesis.HookContext, case: Case) -> Case:
    """Moves: a schema-valid `after_id` becomes null (first). Any other id must be a sibling in the
    target group, which a generated id never is (422 by design; tested in test_moves.py)."""
    body = case.body
    if isinstance(body, dict) and schema_uuid(body.get("after_id")) is not None:
        body["after_id"] = None
    return case


def reminder_window(context: schemathesis.HookContext, case: Case) -> Case:
    """`GET /api/reminders`, positive cases: `to` becomes an hour after a schema-valid `from` (a
    window must be non-empty and at most 7 days, which the schema cannot say)."""
    meta = case.meta
    query = case.query or {}
    if meta is None or not meta.generation.mode.is_positive or not isinstance(query.get("from"), str):
        return case
    try:
        start = datetime.fromisoformat(query["from"].replace("z", "Z")).astimezone(UTC)
    except (ValueError, OverflowError):
        return case  # not a time the app reads either: the case stays as generated
    try:
        query["to"] = (start + timedelta(hours=1)).isoformat()
    except OverflowError:  # the last hour of year 9999: the window ends at `from` instead
        query["from"], query["to"] = (start - timedelta(hours=1)).isoformat(), start.isoformat()
    return case


def register(schema: Any) -> None:
    """Attach the auth providers and each hook to exactly the operations it is documented for."""
    schema.auth(refresh_interval=None).skip_for(name=LEAVER_OPERATION)(UserToken)
    schema.auth(refresh_interval=None).apply_to(name=LEAVER_OPERATION)(LeaverToken)
    for hook, operations in (
        (body_list_id, [*TODO_WRITES, TODO_MOVE]),
        (parent_and_list, [*TODO_WRITES, TODO_MOVE]),
        (schedule, TODO_WRITES),
        (first_place, [TODO_MOVE, LIST_MOVE]),
        (reminder_window, [REMINDERS]),
        (positive_cursor, PAGED_READS),
        (positive_sync_token, SYNC_TOKEN_TAKERS),
        (existing_todo, TODO_BY_ID),
        (existing_list, LIST_BY_ID),
        (doomed_todo, ["DELETE /api/todos/{todo_id}"]),
        (doomed_list, ["DELETE /api/lists/{list_id}"]),
        (trashed_todo, ["POST /api/trash/{resource_id}/restore", "DELETE /api/trash/{resource_id}"]),
        (positive_if_match, CONDITIONAL_WRITES),
        (idempotency_key_per_body, IDEMPOTENT_CREATES),
    ):
        schema.hook("map_case").apply_to(name=operations)(hook)
