"""Opaque, reversible encoding of graph secret values (contract §4.5).

Upstream stores AES-256-GCM ciphertexts (``urlsafe_b64(nonce || ciphertext || tag)``) and shows
them in the graph list (§2.5), while the state secrets endpoint (§2.13) returns plaintext. The
fake needs the same *observable* property: the listed value is not the plaintext, differs on
every encoding, looks like upstream's (URL-safe base64, >= 32 characters) and decodes back.

.. warning::
   This is **not** real cryptography and must not be used as such. It is a development fake
   built from the standard library only (no cryptography dependency): an HMAC-SHA256 keystream
   XORed with the UTF-8 plaintext under a random 12-byte nonce, followed by a 16-byte
   HMAC-SHA256 tag that is verified on decoding. The key is random per process by default, and
   the values live in memory only; with ``--db`` the ciphertexts are written to the database and
   the key is kept beside it (``PATH.key``) or in env ``EXO_REF_SECRETS_KEY``
   (:mod:`fake_state_manager._store.sqlite`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

__all__ = ["SecretBox", "SecretError"]

_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_BYTES = 32
_BLOCK = hashlib.sha256().digest_size


class SecretError(ValueError):
    """A value is not something this box encoded (wrong key, truncated or altered)."""


class SecretBox:
    """Encode and decode secret values with one key.

    Args:
        key: 32 raw bytes; default: fresh random bytes (so values do not survive the process).
    """

    def __init__(self, key: bytes | None = None) -> None:
        if key is None:
            key = os.urandom(_KEY_BYTES)
        if len(key) != _KEY_BYTES:
            raise ValueError(f"SecretBox key must be {_KEY_BYTES} bytes, got {len(key)}")
        # Separate sub-keys for the keystream and the tag.
        self._stream_key = hmac.new(key, b"exo-ref stream", hashlib.sha256).digest()
        self._tag_key = hmac.new(key, b"exo-ref tag", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        blocks = (length + _BLOCK - 1) // _BLOCK
        return b"".join(
            hmac.new(self._stream_key, nonce + i.to_bytes(8, "big"), hashlib.sha256).digest()
            for i in range(blocks)
        )[:length]

    def _tag(self, nonce: bytes, body: bytes) -> bytes:
        return hmac.new(self._tag_key, nonce + body, hashlib.sha256).digest()[:_TAG_BYTES]

    def encrypt(self, plaintext: str, *, nonce: bytes | None = None) -> str:
        """Encode ``plaintext``; a fresh random nonce makes every result different.

        Args:
            plaintext: The secret value.
            nonce: 12 bytes to use instead of a random nonce (tests only).
        """
        if nonce is None:
            nonce = os.urandom(_NONCE_BYTES)
        if len(nonce) != _NONCE_BYTES:
            raise ValueError(f"nonce must be {_NONCE_BYTES} bytes, got {len(nonce)}")
        # surrogatepass: a JSON body may carry a lone surrogate ("\ud800"), which strict UTF-8
        # cannot encode (upstream answers 500 there); it must round-trip like any other value.
        data = plaintext.encode("utf-8", "surrogatepass")
        body = bytes(a ^ b for a, b in zip(data, self._keystream(nonce, len(data)), strict=True))
        return base64.urlsafe_b64encode(nonce + body + self._tag(nonce, body)).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decode a value produced by :meth:`encrypt` with the same key.

        Raises:
            SecretError: the value is malformed, altered or from another key. The message
                never contains the value.
        """
        try:
            raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise SecretError("secret value is not valid URL-safe base64") from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretError("secret value is too short")
        nonce, body, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(nonce, body)):
            raise SecretError("secret value does not verify (altered, or another key)")
        data = bytes(a ^ b for a, b in zip(body, self._keystream(nonce, len(body)), strict=True))
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:  # pragma: no cover - impossible once the tag verified
            raise SecretError("secret value is not UTF-8") from None
