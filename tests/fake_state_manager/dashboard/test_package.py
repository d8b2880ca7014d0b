"""The dashboard as a package: its files ship in the wheel, and it reads through the engine."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from tests.fake_state_manager.test_layers import TREE, imports

DASHBOARD = TREE / "fake_state_manager" / "_dashboard"


def test_templates_and_static_files_are_package_data() -> None:
    config = tomllib.loads((TREE / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["fake_state_manager"]
    files = [
        path.relative_to(TREE / "fake_state_manager").as_posix()
        for folder in ("templates", "static")
        for path in (DASHBOARD / folder).iterdir()
    ]
    assert files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert unshipped == []


def test_the_dashboard_uses_the_engine_only() -> None:
    """No reach past the engine into the store or the graph rules, nor into the API's routes."""
    allowed = (
        "fake_state_manager._dashboard",
        "fake_state_manager._engine.engine",
        "fake_state_manager._errors",
        "fake_state_manager._json",
    )
    found = [
        f"{path.name}:{line}: {target}"
        for path in sorted(DASHBOARD.rglob("*.py"))
        for line, target in imports(path)
        if target.startswith("fake_state_manager") and not target.startswith(allowed)
    ]
    assert found == []


def test_the_app_mounts_the_dashboard() -> None:
    app = Path(TREE / "fake_state_manager" / "_http" / "app.py").read_text(encoding="utf-8")
    assert "build_dashboard(engine" in app
