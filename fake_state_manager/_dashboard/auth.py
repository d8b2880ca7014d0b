"""The dashboard's sessions: a key prompt, an HMAC session cookie and CSRF tokens.

The ``/v0`` API is authorised by ``x-api-key`` alone; the dashboard, which a browser opens, asks
for the same key once (a form) and then carries a session cookie. The cookie never holds the
key: it is ``NONCE.SIGNATURE`` where the signature is an HMAC-SHA256 of the nonce under a random
secret made when the app is built (so every restart ends every session). A POST form carries a
CSRF token, an HMAC of the session's nonce under the same secret, so a token is valid for its
session only. Every comparison uses :func:`hmac.compare_digest`.

The cookie is ``HttpOnly``, ``SameSite=Strict`` and scoped to ``Path=/dashboard``, so it is never
sent to ``/v0`` (where it would authorise nothing anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

__all__ = ["COOKIE_NAME", "COOKIE_PATH", "MAX_SESSIONS", "Sessions"]

#: The session cookie's name and path (the dashboard's prefix: never sent to ``/v0``).
COOKIE_NAME = "exo_dashboard_session"
COOKIE_PATH = "/dashboard"

#: At most this many sessions are open at once; opening one more ends the oldest (its browser
#: is asked for the key again). A bound, so a client logging in in a loop cannot grow memory.
MAX_SESSIONS = 10_000


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


class Sessions:
    """Issues and checks the dashboard's session cookies and CSRF tokens for one app.

    Args:
        api_key: the key the prompt accepts (the API's ``x-api-key``, contract §1.2).
        secret: the HMAC secret (default: 32 random bytes, new for every app).
    """

    def __init__(self, api_key: str, *, secret: bytes | None = None) -> None:
        self._expected = _key_bytes(api_key)
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._open: dict[str, None] = {}  # insertion-ordered set of the open sessions' nonces
        self._lock = threading.Lock()

    def _sign(self, purpose: str, nonce: str) -> str:
        message = f"{purpose}|{nonce}".encode("ascii")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def key_matches(self, presented: str) -> bool:
        """Whether ``presented`` is the API key (constant time)."""
        return hmac.compare_digest(_key_bytes(presented), self._expected)

    def new_session(self) -> str:
        """A fresh cookie value: ``NONCE.HMAC(secret, NONCE)``."""
        nonce = secrets.token_urlsafe(24)
        with self._lock:
            self._open[nonce] = None
            while len(self._open) > MAX_SESSIONS:
                del self._open[next(iter(self._open))]
        return f"{nonce}.{self._sign('session', nonce)}"

    def nonce(self, cookie: str | None) -> str | None:
        """The session's nonce when ``cookie`` is a valid, open session; else ``None``."""
        if not cookie or cookie.count(".") != 1:
            return None
        nonce, signature = cookie.split(".")
        if not nonce.isascii() or not signature.isascii():
            return None
        if not hmac.compare_digest(
            signature.encode("ascii"), self._sign("session", nonce).encode()
        ):
            return None
        with self._lock:
            if nonce not in self._open:  # logged out (or ended by MAX_SESSIONS)
                return None
        return nonce

    def csrf_token(self, nonce: str) -> str:
        """The CSRF token of the session ``nonce`` (the same for every form of the session)."""
        return self._sign("csrf", nonce)

    def csrf_matches(self, nonce: str, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of session ``nonce`` (constant time)."""
        if not token or not token.isascii():
            return False
        return hmac.compare_digest(token.encode("ascii"), self.csrf_token(nonce).encode("ascii"))

    def revoke(self, nonce: str) -> None:
        """Log the session out: its cookie is refused from now on."""
        with self._lock:
            self._open.pop(nonce, None)
