"""Node class validation, before any request is sent (contract §8.2 step 5).

Every problem is collected and reported in one :class:`NodeValidationError` (a ``ValueError``)
whose text is upstream's: ``Following errors while validating nodes: `` and one line per problem.
Additions to upstream's checks: a non-class entry is reported in the list (upstream crashed with a
``TypeError`` from ``issubclass``), and so is a node class that does not implement ``execute``.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

from ._errors import NodeValidationError
from ._node import BaseNode

__all__ = ["validate_nodes"]

_MODELS = ("Inputs", "Outputs", "Secrets")


def validate_nodes(nodes: Sequence[object]) -> list[type[BaseNode]]:
    """Check the node classes a runtime will serve.

    Returns:
        The same classes, typed. An empty sequence is valid (upstream accepts it).

    Raises:
        NodeValidationError: listing every problem found in every node.
    """
    problems: list[str] = []
    for node in nodes:
        if not inspect.isclass(node):
            problems.append(f"{node!r} is not a class: pass node classes, not instances")
            continue
        _check_class(node, problems)
    names = [node.__name__ for node in nodes if inspect.isclass(node)]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        problems.append(f"Duplicate node class names found: {duplicates}")
    if problems:
        raise NodeValidationError(problems)
    return [node for node in nodes if inspect.isclass(node) and issubclass(node, BaseNode)]


def _check_class(node: type, problems: list[str]) -> None:
    name = node.__name__
    if not issubclass(node, BaseNode):
        problems.append(f"{name} does not inherit from exo_ref.BaseNode")
    elif inspect.isabstract(node):
        problems.append(f"{name} does not implement execute(self)")
    for attr in _MODELS:
        model = getattr(node, attr, None)
        if model is None:
            problems.append(f"{name} does not have an {attr} class")
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            problems.append(
                f"{name} does not have an {attr} class that inherits from pydantic.BaseModel"
            )
            continue
        # Values travel as strings on the wire; only exactly `str` is accepted (§8.9 item 11).
        for field_name, info in model.model_fields.items():
            if info.annotation is not str:
                problems.append(
                    f"{name}.{attr} field '{field_name}' must be of type str, "
                    f"got {info.annotation}"
                )
