"""conformance's public names: __all__ is sorted, complete and importable; strategies included."""

from __future__ import annotations

import subprocess
import sys

from hypothesis.strategies import SearchStrategy

import conformance


def test_all_is_sorted_and_importable() -> None:
    names = conformance.__all__
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        assert getattr(conformance, name) is not None


def test_every_public_attribute_is_listed() -> None:
    for name in conformance.__all__:
        getattr(conformance, name)  # names are imported on first use (PEP 562)
    public = {
        name
        for name, value in vars(conformance).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("conformance.")
    }
    assert public <= set(conformance.__all__)


def test_the_black_box_mode_needs_no_hypothesis() -> None:
    """``conformance.service`` runs in an SDK's environment, which need not have hypothesis."""
    code = (
        "import sys, conformance, conformance.service, conformance._battery;"
        " sys.exit('hypothesis' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_hypothesis_strategies_are_public() -> None:
    strategies = {
        "behaviours": conformance.behaviours(sync=False),
        "fault_plans": conformance.fault_plans(),
        "field_names": conformance.field_names(),
        "invalid_node_problems": conformance.invalid_node_problems(()),
        "node_shape_sets": conformance.node_shape_sets(),
        "node_shapes": conformance.node_shapes("Node"),
        "scenarios": conformance.scenarios(conformance.exo_ref_target()),
    }
    assert set(strategies) <= set(conformance.__all__)
    for name, strategy in strategies.items():
        assert isinstance(strategy, SearchStrategy), name
        assert getattr(conformance, name).__doc__, name
