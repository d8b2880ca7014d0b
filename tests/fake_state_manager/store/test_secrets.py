"""Tests of the secret encoding (contract §4.5)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fake_state_manager._store.secrets import SecretBox, SecretError

KEY = bytes(range(32))


def test_round_trip_and_opaque() -> None:
    box = SecretBox(KEY)
    token = box.encrypt("hunter2")
    assert "hunter2" not in token
    assert box.decrypt(token) == "hunter2"


def test_every_encoding_differs() -> None:
    box = SecretBox()
    assert box.encrypt("same") != box.encrypt("same")


def test_looks_like_upstream_ciphertext() -> None:
    token = SecretBox().encrypt("")
    # Upstream's own check: >= 32 characters, URL-safe base64, >= 12 decoded bytes.
    assert len(token) >= 32
    assert len(base64.urlsafe_b64decode(token)) == 12 + 16


def test_fixed_nonce_is_deterministic() -> None:
    box = SecretBox(KEY)
    nonce = b"\x00" * 12
    assert box.encrypt("v", nonce=nonce) == box.encrypt("v", nonce=nonce)


def test_other_key_fails_verification() -> None:
    token = SecretBox(KEY).encrypt("v")
    with pytest.raises(SecretError, match="does not verify"):
        SecretBox(bytes(32)).decrypt(token)


def test_default_keys_are_per_instance() -> None:
    with pytest.raises(SecretError):
        SecretBox().decrypt(SecretBox().encrypt("v"))


def test_tampered_value_fails() -> None:
    box = SecretBox(KEY)
    raw = bytearray(base64.urlsafe_b64decode(box.encrypt("value")))
    raw[13] ^= 1
    with pytest.raises(SecretError, match="does not verify"):
        box.decrypt(base64.urlsafe_b64encode(bytes(raw)).decode())


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param("@@@", "not valid URL-safe base64", id="not-base64"),
        pytest.param("é", "not valid URL-safe base64", id="not-ascii"),
        pytest.param("AAAA", "too short", id="short"),
    ],
)
def test_malformed_values(token: str, message: str) -> None:
    with pytest.raises(SecretError, match=message):
        SecretBox(KEY).decrypt(token)


@pytest.mark.parametrize(
    ("key", "nonce"),
    [pytest.param(b"short", None, id="short-key"), pytest.param(KEY, b"123", id="short-nonce")],
)
def test_bad_key_or_nonce_length(key: bytes, nonce: bytes | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        SecretBox(key).encrypt("v", nonce=nonce)


def test_repr_hides_the_key() -> None:
    assert repr(SecretBox(KEY)) == "SecretBox(<key hidden>)"


@given(st.text(st.characters(exclude_categories=()), max_size=200))
def test_round_trip_of_any_text(plaintext: str) -> None:
    # Lone surrogates included: a JSON body can carry "\ud800", and encoding it must not fail.
    box = SecretBox(KEY)
    assert box.decrypt(box.encrypt(plaintext)) == plaintext


def test_a_lone_surrogate_round_trips() -> None:
    box = SecretBox(KEY)
    assert box.decrypt(box.encrypt("hunter2\ud800")) == "hunter2\ud800"
