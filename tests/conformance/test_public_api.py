"""conformance's public names: __all__ is sorted, complete and importable."""

from __future__ import annotations

import conformance


def test_all_is_sorted_and_importable() -> None:
    names = conformance.__all__
    assert names == sorted(names, key=lambda n: (not n[0].isupper(), n))
    for name in names:
        assert getattr(conformance, name) is not None


def test_every_public_attribute_is_listed() -> None:
    public = {
        name
        for name, value in vars(conformance).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("conformance.")
    }
    assert public <= set(conformance.__all__)
