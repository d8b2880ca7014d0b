"""Errors raised by the fake state manager's engine.

Hierarchy::

    Exception
    └── FakeStateManagerError        root of everything the fake raises on purpose
        ├── ApiError                 an answer for the client: HTTP status + ``detail`` string
        │                            (upstream raises ``HTTPException`` here, contract §1.3);
        │                            the routes turn it into ``{"detail": detail}``
        └── DuplicateKeyError        the store refused an insert that breaks a unique index
                                     (contract §3.1); the engine turns it into upstream's outcome
                                     (a swallowed duplicate, "retry created", or a 409)

The engine never lets bad input escape as anything but :class:`ApiError`; an exception of any
other type coming out of the engine is a bug in the fake.
"""

from __future__ import annotations

__all__ = ["ApiError", "DuplicateKeyError", "FakeStateManagerError"]


class FakeStateManagerError(Exception):
    """Root of every error the fake state manager raises deliberately."""


class ApiError(FakeStateManagerError):
    """An HTTPException-shaped answer: the routes send ``status`` with ``{"detail": detail}``.

    Attributes:
        status: the HTTP status code (400, 404, 409, ...), as the contract gives it.
        detail: the exact ``detail`` string of the contract (e.g. ``State not found``).
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def __repr__(self) -> str:
        return f"ApiError(status={self.status!r}, detail={self.detail!r})"


class DuplicateKeyError(FakeStateManagerError):
    """An insert would break one of the store's unique indexes (contract §3.1).

    Internal to the fake: the engine always catches it and answers as upstream does.
    """
