"""The dashboard's sessions (fake_state_manager._dashboard.auth): cookies and CSRF tokens."""

from __future__ import annotations

import hmac

import pytest

from fake_state_manager._dashboard import auth
from fake_state_manager._dashboard.auth import Sessions


def test_a_session_cookie_is_a_nonce_and_its_hmac_never_the_key() -> None:
    sessions = Sessions("the-key", secret=b"s" * 32)
    cookie = sessions.new_session()
    nonce, signature = cookie.split(".")
    assert "the-key" not in cookie
    assert len(signature) == 64
    assert sessions.nonce(cookie) == nonce
    assert Sessions("the-key", secret=b"t" * 32).nonce(cookie) is None  # another app's secret


@pytest.mark.parametrize("cookie", [None, "", "x", "a.b.c", "é.é", "nonce.00"])
def test_malformed_cookies_are_refused(cookie: str | None) -> None:
    assert Sessions("k").nonce(cookie) is None


def test_a_tampered_cookie_is_refused() -> None:
    sessions = Sessions("k")
    nonce, signature = sessions.new_session().split(".")
    assert sessions.nonce(f"{nonce}x.{signature}") is None
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert sessions.nonce(f"{nonce}.{flipped}") is None


def test_a_well_signed_cookie_of_no_open_session_is_refused() -> None:
    sessions = Sessions("k", secret=b"s" * 32)
    forged = f"made-up.{sessions._sign('session', 'made-up')}"
    assert sessions.nonce(forged) is None  # only sessions this app opened count


def test_revoke_ends_a_session() -> None:
    sessions = Sessions("k")
    cookie = sessions.new_session()
    nonce = sessions.nonce(cookie)
    assert nonce is not None
    sessions.revoke(nonce)
    sessions.revoke(nonce)  # twice is fine
    assert sessions.nonce(cookie) is None


def test_open_sessions_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_SESSIONS", 2)
    sessions = Sessions("k")
    first, second, third = (sessions.new_session() for _ in range(3))
    assert sessions.nonce(first) is None  # the oldest ended
    assert sessions.nonce(second) is not None
    assert sessions.nonce(third) is not None


def test_csrf_tokens_belong_to_their_session() -> None:
    sessions = Sessions("k")
    one = sessions.nonce(sessions.new_session())
    two = sessions.nonce(sessions.new_session())
    assert one is not None
    assert two is not None
    token = sessions.csrf_token(one)
    assert sessions.csrf_matches(one, token)
    assert not sessions.csrf_matches(two, token)
    assert not sessions.csrf_matches(one, None)
    assert not sessions.csrf_matches(one, "")
    assert not sessions.csrf_matches(one, "é" + token[1:])
    assert token != sessions._sign("session", one)  # a cookie's signature is not a token


@pytest.mark.parametrize(
    ("presented", "matches"), [("k€y", True), ("k€", False), ("", False), ("K€Y", False)]
)
def test_keys_and_tokens_are_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, presented: str, matches: bool
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    sessions = Sessions("k€y")
    assert sessions.key_matches(presented) is matches
    nonce = sessions.nonce(sessions.new_session())
    assert nonce is not None
    assert sessions.csrf_matches(nonce, sessions.csrf_token(nonce))
    assert len(calls) == 3  # the key, the cookie's signature, the CSRF token
