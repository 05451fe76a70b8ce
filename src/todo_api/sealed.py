"""Sealed tokens: small payloads handed to clients that they can neither read nor forge.

AES-256-GCM (authenticated encryption, `cryptography`) with a key derived by HKDF-SHA256 from a
server secret and a purpose (`cursor`, …), so tokens of one purpose never open as another. Every
token has a fresh random 96-bit nonce. The `context` a token is sealed for (e.g. the user and the
query a cursor belongs to) is authenticated as associated data: opened in any other context, the
token is refused like a forged one. Rotation: seal with the current secret, open with the current
or the previous one.

Token = base64url(version ‖ nonce ‖ ciphertext ‖ tag), without padding.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class Unsealable(ValueError):
    """Not a token sealed by this server for this purpose and context (forged, edited, truncated,
    sealed with a retired secret, or for another context)."""


def _key(secret: str, purpose: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"todo-api sealed {purpose} v1".encode())
    return AESGCM(hkdf.derive(secret.encode()))


class Sealer:
    def __init__(self, secrets: Sequence[str], purpose: str) -> None:
        """`secrets`: the current one first (it seals), then any still accepted for opening."""
        if not secrets:
            raise ValueError("a Sealer needs at least one secret")
        self._keys = [_key(secret, purpose) for secret in secrets]

    def seal(self, payload: bytes, context: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[0].encrypt(nonce, payload, _VERSION + context)
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).rstrip(b"=").decode("ascii")

    def unseal(self, token: str, context: bytes) -> bytes:
        """The payload of a token sealed for `context`; `Unsealable` for anything else."""
        if not _TOKEN.fullmatch(token):
            raise Unsealable
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise Unsealable from None
        version, nonce, sealed = raw[:1], raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
        if version != _VERSION or len(sealed) < _TAG_BYTES:
            raise Unsealable
        for key in self._keys:
            try:
                return key.decrypt(nonce, sealed, version + context)
            except InvalidTag:
                continue
        raise Unsealable
