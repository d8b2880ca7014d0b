"""exo_ref._event_loop: uvloop's loop for the asyncio backend where it is installed."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from exo_ref import event_loop_options


def test_uvloop_for_asyncio_when_installed() -> None:
    # uvloop is a dependency on this platform (pyproject.toml), so the test env has it.
    assert event_loop_options() == {"use_uvloop": True}
    assert event_loop_options("asyncio") == {"use_uvloop": True}


def test_trio_gets_no_options() -> None:
    assert event_loop_options("trio") == {}


def test_windows_keeps_asyncio_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert event_loop_options("asyncio") == {}


def test_without_uvloop_asyncio_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "uvloop" else find_spec(name, *args),
    )
    assert event_loop_options("asyncio") == {}
