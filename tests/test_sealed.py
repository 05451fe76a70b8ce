"""Sealed tokens (`todo_api.sealed`): what one seals only the same server, purpose and context opens;
anything else is `Unsealable`, never another error."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todo_api.sealed import Sealer, Unsealable

SECRET = "s" * 32 + "-current"
OLD_SECRET = "o" * 32 + "-previous"
SEALER = Sealer([SECRET], purpose="cursor")
PAYLOADS = st.binary(max_size=300)
CONTEXTS = st.binary(max_size=100)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@given(payload=PAYLOADS, context=CONTEXTS)
def test_a_sealed_payload_opens_in_its_context(payload: bytes, context: bytes) -> None:
    token = SEALER.seal(payload, context)
    assert SEALER.unseal(token, context) == payload
    assert token != SEALER.seal(payload, context)  # a fresh nonce every time


@given(payload=PAYLOADS, context=CONTEXTS, other=CONTEXTS)
def test_another_context_is_refused(payload: bytes, context: bytes, other: bytes) -> None:
    token = SEALER.seal(payload, context)
    if other != context:
        with pytest.raises(Unsealable):
            SEALER.unseal(token, other)


@given(payload=PAYLOADS, context=CONTEXTS, data=st.data())
def test_any_edit_of_the_bytes_is_refused(payload: bytes, context: bytes, data: st.DataObject) -> None:
    raw = _unb64(SEALER.seal(payload, context))
    edit = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if edit == "flip":
        position, bit = data.draw(st.integers(0, len(raw) - 1)), data.draw(st.integers(0, 7))
        edited = raw[:position] + bytes([raw[position] ^ (1 << bit)]) + raw[position + 1 :]
    elif edit == "truncate":
        edited = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        edited = raw + data.draw(st.binary(min_size=1, max_size=20))
    with pytest.raises(Unsealable):
        SEALER.unseal(_b64(edited), context)


@settings(max_examples=300)
@given(token=st.text(max_size=200), context=CONTEXTS)
def test_arbitrary_text_is_refused_as_unsealable_only(token: str, context: bytes) -> None:
    """Unicode, NUL, lone surrogates, base64 of anything: one error type, never a crash."""
    with pytest.raises(Unsealable):
        SEALER.unseal(token, context)


@given(payload=PAYLOADS, context=CONTEXTS)
def test_the_previous_secret_still_opens_during_a_rotation(payload: bytes, context: bytes) -> None:
    old_token = Sealer([OLD_SECRET], purpose="cursor").seal(payload, context)
    rotating = Sealer([SECRET, OLD_SECRET], purpose="cursor")
    assert rotating.unseal(old_token, context) == payload
    with pytest.raises(Unsealable):  # once the old secret is retired
        SEALER.unseal(old_token, context)


def test_rotation_seals_with_the_current_secret_only() -> None:
    token = Sealer([SECRET, OLD_SECRET], purpose="cursor").seal(b"payload", b"ctx")
    assert SEALER.unseal(token, b"ctx") == b"payload"
    with pytest.raises(Unsealable):
        Sealer([OLD_SECRET], purpose="cursor").unseal(token, b"ctx")


def test_tokens_of_another_purpose_are_refused() -> None:
    """A sync token (say) never opens as a cursor, even under the same secret and context."""
    token = Sealer([SECRET], purpose="sync").seal(b"payload", b"ctx")
    with pytest.raises(Unsealable):
        SEALER.unseal(token, b"ctx")


def test_the_payload_does_not_appear_in_the_token() -> None:
    secret_text = b"a title nobody else should read"
    raw = _unb64(SEALER.seal(secret_text, b""))
    assert secret_text not in raw
    assert secret_text[:8] not in raw


def test_a_sealer_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        Sealer([], purpose="cursor")
