"""Key pairs shared by the authentication tests (generating RSA keys is slow: once per session)."""

from __future__ import annotations

import pytest

from tests.keys import PrivateKey, new_key


@pytest.fixture(scope="session")
def ed_key() -> PrivateKey:
    return new_key("ed25519")


@pytest.fixture(scope="session")
def rsa_key() -> PrivateKey:
    return new_key("rsa")


@pytest.fixture(scope="session")
def ec_key() -> PrivateKey:
    return new_key("es256")
