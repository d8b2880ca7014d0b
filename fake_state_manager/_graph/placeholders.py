"""Dependent strings: the ``${{ X.outputs.f }}`` / ``${{ store.k }}`` grammar (contract §4.2).

A template input such as ``"Hello ${{ fetch.outputs.name }}!"`` is parsed into a literal head and
a list of ``(identifier, field, tail)`` parts. Rendering concatenates ``head + value1 + tail1 +
value2 + tail2 ...``; repeated references share one value. Store references use the identifier
``"store"`` (``${{ store.k }}`` -> ``("store", "k")``).

Error messages are upstream's verbatim, since they surface in 400 ``detail`` strings (contract
§4.3 ``Error creating dependent string ...``, §4.6 ``Invalid input: ...``). Upstream builds the
"not closed" message with an f-string whose ``'${{'`` renders as ``'${'``; we emit that rendered
text (see docs/fidelity.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "STORE",
    "DependentString",
    "PlaceholderError",
    "Reference",
    "parse",
]

#: The identifier of store references: ``${{ store.k }}`` -> ``("store", "k")``.
STORE = "store"

_OPEN = "${{"
_CLOSE = "}}"

#: ``(identifier, field)``: a node output, or ``("store", key)``.
Reference = tuple[str, str]


class PlaceholderError(ValueError):
    """A dependent string does not follow the grammar of contract §4.2.

    A ``ValueError`` so that callers mimicking upstream's ``except ValueError`` / ``str(e)``
    produce the same text.
    """


@dataclass(frozen=True, slots=True)
class DependentString:
    """A parsed template input value.

    Attributes:
        head: The literal text before the first placeholder (the whole string if none).
        parts: ``(identifier, field, tail)`` per placeholder, in order.
    """

    head: str
    parts: tuple[tuple[str, str, str], ...] = ()

    @property
    def is_literal(self) -> bool:
        """True when the string has no placeholder at all."""
        return not self.parts

    def dependencies(self) -> list[Reference]:
        """The distinct ``(identifier, field)`` references, in order of first appearance."""
        return list(dict.fromkeys((ident, field) for ident, field, _ in self.parts))

    def identifiers(self) -> list[str]:
        """The distinct referenced identifiers (``"store"`` included), in order of appearance."""
        return list(dict.fromkeys(ident for ident, _, _ in self.parts))

    def store_keys(self) -> list[str]:
        """The distinct store keys referenced, in order of first appearance."""
        return [field for ident, field in self.dependencies() if ident == STORE]

    def render(self, resolve: Callable[[str, str], object]) -> str:
        """Substitute every placeholder with ``resolve(identifier, field)``.

        Each distinct reference is resolved once. The pieces are joined with ``+`` like
        upstream, so a non-string value raises ``TypeError`` (contract §3.5 step 3c: a
        non-string output value turns the next-state creation into NEXT_CREATED_ERROR).
        Exceptions from ``resolve`` propagate unchanged.
        """
        values: dict[Reference, object] = {}
        for reference in self.dependencies():
            values[reference] = resolve(*reference)
        result = self.head
        for ident, field, tail in self.parts:
            value = values[(ident, field)]
            if not isinstance(value, str):
                raise TypeError(f'can only concatenate str (not "{type(value).__name__}") to str')
            result = result + value + tail
        return result


def parse(text: str) -> DependentString:
    """Parse ``text`` per contract §4.2.

    Raises:
        PlaceholderError: an unclosed ``${{`` or a placeholder that is neither
            ``X.outputs.f`` nor ``store.k``.
    """
    pieces = text.split(_OPEN)
    if len(pieces) == 1:
        return DependentString(head=text)
    parts: list[tuple[str, str, str]] = []
    for piece in pieces[1:]:
        if _CLOSE not in piece:
            raise PlaceholderError(
                f"Invalid syntax string placeholder {piece} for: {text} '${{' not closed"
            )
        content, tail = piece.split(_CLOSE, 1)
        names = [name.strip() for name in content.split(".")]
        if len(names) == 3 and names[1] == "outputs":
            parts.append((names[0], names[2], tail))
        elif len(names) == 2 and names[0] == STORE:
            parts.append((STORE, names[1], tail))
        else:
            raise PlaceholderError(f"Invalid syntax string placeholder {content} for: {text}")
    return DependentString(head=pieces[0], parts=tuple(parts))
