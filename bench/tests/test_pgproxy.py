"""The relay: protocol parsing whatever the chunking, round trips counted on a real PostgreSQL,
and the delay applied each way."""

from __future__ import annotations

import itertools
import struct
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.pgproxy import PROTOCOL_3, ClientParser
from bench.remote import Relay, per_request


def _typed(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _stream() -> bytes:
    ssl_request = struct.pack("!II", 8, 80877103)
    startup = b"user\0postgres\0database\0postgres\0\0"
    startup_message = struct.pack("!II", len(startup) + 8, PROTOCOL_3) + startup
    extended = b"".join(_typed(k, b"x" * n) for k, n in ((b"P", 40), (b"B", 12), (b"D", 6), (b"E", 9), (b"S", 0)))
    return ssl_request + startup_message + _typed(b"Q", b"BEGIN; SELECT 1\0") + extended * 3 + _typed(b"X", b"")


EXPECTED = Counter({"Q": 1, "P": 3, "B": 3, "D": 3, "E": 3, "S": 3, "X": 1})


@given(st.lists(st.integers(min_value=1, max_value=len(_stream()) - 1), max_size=30))
def test_parser_counts_messages_however_the_stream_is_cut(cuts: list[int]) -> None:
    stream, counts, parser = _stream(), Counter[str](), ClientParser()
    edges = [0, *sorted(set(cuts)), len(stream)]
    for start, end in itertools.pairwise(edges):
        parser.feed(stream[start:end], counts)
    assert counts == EXPECTED


@pytest.fixture
def relay(server_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Relay]:
    started = Relay.start(server_url, request.param, tmp_path / "relay.log")
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.parametrize("relay", [0.0], indirect=True)
def test_round_trips_of_known_conversations(relay: Relay, server_url: str) -> None:
    url = relay.url_for(server_url)
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as connection:
        before = relay.counters()
        connection.execute("SELECT 1")  # simple protocol: one Q
        connection.execute("SELECT %s::int", (1,))  # extended: Parse/Bind/Describe/Execute/Sync
        simple_and_extended = per_request(before, relay.counters(), 1)
    with psycopg.connect(url, prepare_threshold=None) as connection:
        before = relay.counters()
        for n in range(10):
            connection.execute("SELECT %s::int", (n,))  # BEGIN (own round trip) + statement
            connection.commit()
        transactions = per_request(before, relay.counters(), 10)
    assert simple_and_extended["round_trips"] == 2
    assert simple_and_extended["turns"] == 2
    assert transactions["round_trips"] == 3  # BEGIN, the statement, COMMIT
    assert transactions["turns"] == 3


@pytest.mark.parametrize("relay", [5.0], indirect=True)
def test_every_round_trip_waits_the_delay_each_way(relay: Relay, server_url: str) -> None:
    with psycopg.connect(relay.url_for(server_url), autocommit=True) as connection:
        connection.execute("SELECT 1")
        started = time.perf_counter()
        for _ in range(5):
            connection.execute("SELECT 1")
        elapsed = time.perf_counter() - started
    assert elapsed >= 5 * 2 * 0.005  # five round trips, 5 ms each way
    assert elapsed < 30  # hang bound only
    lateness = relay.counters()["lateness_us"]
    assert lateness["samples"] >= 10
