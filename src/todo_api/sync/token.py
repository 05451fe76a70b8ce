"""Sync tokens: where a client's copy stands, sealed like cursors (AES-GCM, CURSOR_SECRET) and
bound to the user (authenticated associated data), so they can be neither read, forged, edited nor
used by another user.

Payload, 50 bytes: flags (full round, has position), `since`, `round_xmin`, position (xid, rank,
id). See `todo_api.sync.service` for what each means.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from todo_api.errors import InvalidSyncToken
from todo_api.sealed import Sealer, Unsealable

SYNC_TOKEN_LOC = ("query", "sync_token")
SYNC_TOKEN_MAX_LENGTH = 200  # a sealed 50-byte payload is 104 characters
_PAYLOAD = struct.Struct(">BQQQB16s")
_FULL, _POSITIONED = 1, 2
XID8_MAX = 2**64 - 1
NIL, MAX = uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)
RANKS = 3  # lists, todos, tombstones: the order of kinds within one transaction id


@dataclass(frozen=True, slots=True)
class Position:
    """The last change a page returned, in (change_xid, rank, id) order."""

    xid: int
    rank: int
    id: uuid.UUID

    def after_id(self, rank: int) -> uuid.UUID:
        """For a source of `rank`: the id to compare (change_xid, id) > (xid, ·) with, so that one
        row comparison per source continues exactly after this position."""
        if rank == self.rank:
            return self.id
        return NIL if rank > self.rank else MAX


@dataclass(frozen=True, slots=True)
class SyncState:
    """`full`: a full sync round (live rows only, no deletions). `since`: changes with change_xid ≥
    since belong to this round. `round_xmin`: the least snapshot xmin of this round's pages so far.
    `position`: where the round's previous page ended (None: the round starts)."""

    full: bool
    since: int
    round_xmin: int
    position: Position | None

    @classmethod
    def start(cls) -> SyncState:
        return cls(full=True, since=0, round_xmin=0, position=None)

    def first_position(self) -> Position:
        return self.position or Position(self.since, 0, NIL)


def _context(user_id: uuid.UUID) -> bytes:
    # Cursors are sealed with `["<sort>", …]` (JSON) as context: neither opens as the other.
    return b"sync\x00" + user_id.bytes


def seal(sealer: Sealer, user_id: uuid.UUID, state: SyncState) -> str:
    flags = (_FULL if state.full else 0) | (_POSITIONED if state.position else 0)
    position = state.position or Position(0, 0, NIL)
    payload = _PAYLOAD.pack(flags, state.since, state.round_xmin, position.xid, position.rank, position.id.bytes)
    return sealer.seal(payload, _context(user_id))


INVALID = "Invalid sync_token: send one this server returned to you"


def unseal(sealer: Sealer, user_id: uuid.UUID, token: str, loc: tuple[str, ...] = SYNC_TOKEN_LOC) -> SyncState:
    """The state a token carries; `InvalidSyncToken` (422 at `loc`) for anything this server did
    not seal for this user."""
    try:
        payload = sealer.unseal(token, _context(user_id))
        flags, since, round_xmin, xid, rank, raw_id = _PAYLOAD.unpack(payload)
    except (Unsealable, struct.error):
        raise InvalidSyncToken(loc, INVALID, token) from None
    if flags & ~(_FULL | _POSITIONED) or rank >= RANKS:
        raise InvalidSyncToken(loc, INVALID, token)
    position = Position(xid, rank, uuid.UUID(bytes=raw_id)) if flags & _POSITIONED else None
    return SyncState(full=bool(flags & _FULL), since=since, round_xmin=round_xmin, position=position)
