"""The dashboard in a real headless browser (run by ``tox -e browser``).

Debian's ``chromium`` (``apt-get install -y chromium``; another binary with ``EXO_CHROMIUM``)
driven by Playwright from PyPI (``pip install playwright``), launched with ``executable_path`` so
Playwright downloads no browser. These tests run only when asked: with ``EXO_REQUIRE_BROWSER=1``
(the ``browser`` tox env sets it) a missing Playwright or chromium is a loud error; without it the
directory is left out of collection (not skipped: the normal suite simply does not contain it)::

    EXO_REQUIRE_BROWSER=1 python -m pytest tests/browser

Screenshots are kept under pytest's tmp path (``--basetemp`` to choose it); their paths are
listed at the end of the run. ``EXO_DASHBOARD_SCREENSHOT=docs/dashboard-run.png`` also copies the
run page's screenshot there (how the README's picture is made).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: The browser binary: Debian's chromium unless EXO_CHROMIUM names another.
CHROMIUM = os.environ.get("EXO_CHROMIUM", "/usr/bin/chromium")
#: The start options the browser tests use (Playwright adds --headless itself).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not importable: pip install playwright (tox -e browser does)"
    if shutil.which(CHROMIUM) is None:
        return (
            f"no chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does), or set"
            " EXO_CHROMIUM to a Chromium binary"
        )
    return None


if os.environ.get("EXO_REQUIRE_BROWSER"):
    problem = _missing()
    if problem is not None:
        raise RuntimeError(f"EXO_REQUIRE_BROWSER is set but {problem}")
else:
    collect_ignore_glob = ["*.py"]

_SHOTS: list[Path] = []


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import expect, sync_playwright

    # Playwright's auto-waiting is the only synchronisation: generous, since a run has to
    # finish through a real runtime on a loaded CI machine.
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Shots:
    """Takes full-page screenshots into one tmp directory and remembers their paths."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def take(self, page: Any, name: str) -> Path:
        path = self.folder / f"{len(_SHOTS) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        _SHOTS.append(path)
        return path


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return Shots(folder)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SHOTS:
        terminalreporter.section("dashboard screenshots")
        for path in _SHOTS:
            terminalreporter.write_line(str(path))
