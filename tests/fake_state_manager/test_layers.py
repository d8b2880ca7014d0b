"""The fake's layers import one way only: HTTP -> dashboard -> engine -> graph rules / store.

An AST walk over every module of the package (imports inside functions included), so a lower
layer that reaches up, or a package that reaches into another's private modules, fails here
with the file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The source tree (tox installs a wheel, which holds neither benchmarks nor examples).
TREE = Path(__file__).resolve().parents[2]
ROOT = TREE / "fake_state_manager"

#: The rank of each layer; a module may import layers of a lower rank and its own subpackage.
#: ``_graph`` and ``_store`` share a rank but are separate rooms: neither imports the other.
#: ``_dashboard`` is at the HTTP level, under the app that mounts it: it uses the engine (never
#: the API's routes), ``_http.app`` mounts it, and nothing below reaches up to it.
#: ``_errors`` and ``_json`` are the shared vocabulary (the API's error, a JSON object's type).
RANKS = {
    "_errors": 0, "_json": 0, "_graph": 1, "_store": 1, "_engine": 2, "_dashboard": 3, "_http": 4,
}
TOP = 5  # __init__, __main__, _cli, _fake: the facade, free to use every layer


def layer(module: str) -> str:
    """``fake_state_manager._engine.cron`` -> ``_engine``; the facade modules -> ``""``."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in RANKS:
        return ""
    return parts[1]


def rank(module: str) -> int:
    name = layer(module)
    return RANKS[name] if name else TOP


def module_name(path: Path) -> str:
    relative = path.relative_to(TREE).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, package: str = "") -> Iterator[tuple[int, str]]:
    """Every absolute module name ``path`` imports (``from X import y`` yields ``X.y`` too).

    ``package`` (for relative imports) defaults to the one ``path`` sits in under ``TREE``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if not package:
        package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def upward_imports(paths: list[Path]) -> list[str]:
    problems = []
    for path in paths:
        here = module_name(path)
        for line, target in imports(path):
            if not target.startswith("fake_state_manager."):
                if target == "fake_state_manager" and rank(here) < TOP:
                    problems.append(f"{path.name}:{line}: {here} imports the package facade")
                continue
            if layer(target) == layer(here):
                continue
            if rank(target) >= rank(here):
                problems.append(f"{path.relative_to(TREE)}:{line}: {here} imports {target}")
    return problems


def package_files(package: str) -> list[Path]:
    return sorted((TREE / package).rglob("*.py"))


def test_every_subpackage_is_a_known_layer() -> None:
    subpackages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    shared_modules = {"_errors", "_json"}  # single modules, not subpackages
    assert subpackages == set(RANKS) - shared_modules


def test_layers_import_downward_only() -> None:
    assert upward_imports(package_files("fake_state_manager")) == []


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    # A graph rule that reaches up into the engine must be reported.
    fake = TREE / "fake_state_manager" / "_graph" / "checks.py"
    source = fake.read_text(encoding="utf-8") + "\nfrom fake_state_manager._engine import engine\n"
    probe = tmp_path / "checks.py"
    probe.write_text(source, encoding="utf-8")
    here = "fake_state_manager._graph.checks"
    found = [
        target
        for _, target in imports(probe, "fake_state_manager._graph")
        if target.startswith("fake_state_manager.") and rank(target) > rank(here)
    ]
    assert found == ["fake_state_manager._engine", "fake_state_manager._engine.engine"]


@pytest.mark.parametrize(
    ("package", "private"),
    [
        ("fake_state_manager", "exo_ref._"),
        ("conformance", "exo_ref._"),
        ("benchmarks", "exo_ref._"),
        ("examples", "exo_ref._"),
        ("exo_ref", "fake_state_manager._"),
        ("conformance", "fake_state_manager._"),
        ("benchmarks", "fake_state_manager._"),
        ("examples", "fake_state_manager._"),
    ],
)
def test_packages_use_each_others_public_names_only(package: str, private: str) -> None:
    found = [
        f"{path.relative_to(TREE)}:{line}: {target}"
        for path in package_files(package)
        for line, target in imports(path)
        if target.startswith(private)
    ]
    assert found == []
