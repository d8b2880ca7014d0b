"""``BaseNode``: the class users subclass to define a unit of work (contract §8.1)."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from typing import Any, TypeAlias

import anyio.to_thread
from pydantic import BaseModel

__all__ = ["BaseNode", "ExecuteResult", "is_async_node"]

ExecuteResult: TypeAlias = BaseModel | Sequence[BaseModel] | None
"""What ``execute`` may return: one ``Outputs``, a list of them (fan-out), or ``None``.

Typed ``Sequence`` (covariant) so that ``-> list[Outputs]`` overrides type-check; at run time
the runtime accepts a ``list`` (contract §8.6 step 5)."""


class BaseNode(ABC):
    """Base class for the nodes a :class:`~exo_ref.Runtime` serves.

    Define nested pydantic models ``Inputs``, ``Outputs`` and ``Secrets`` (every field annotated
    ``str``, contract §8.2) and implement ``execute(self)``. ``execute`` takes no arguments: the
    validated values are on ``self.inputs`` and ``self.secrets``. It may be ``async def`` or a
    plain ``def``; a plain one runs in a worker thread so it cannot block the event loop.

    The runtime creates a fresh instance per state with ``node()``, so ``__init__`` must take no
    arguments.
    """

    class Inputs(BaseModel):
        """The node's inputs; every field must be annotated ``str``."""

    class Outputs(BaseModel):
        """The node's outputs; every field must be annotated ``str``."""

    class Secrets(BaseModel):
        """The graph secrets the node needs; every field must be annotated ``str``."""

    def __init__(self) -> None:
        # Typed Any so that user code can write ``self.inputs.field`` without casts.
        self.inputs: Any = None
        self.secrets: Any = None

    @abstractmethod
    def execute(self) -> ExecuteResult | Awaitable[ExecuteResult]:
        """Do the work for ``self.inputs`` and return ``Outputs``, a list of them, or ``None``.

        Raise :class:`~exo_ref.PruneSignal` or :class:`~exo_ref.ReQueueAfterSignal` to end the
        state without outputs; any other exception reports the state as errored with its
        message.
        """

    async def _execute(self, inputs: BaseModel, secrets: BaseModel) -> ExecuteResult:
        """Upstream's entry point: set ``inputs``/``secrets`` and run ``execute``.

        Kept for code (and tests) written against upstream; a sync ``execute`` runs in a thread.
        """
        self.inputs = inputs
        self.secrets = secrets
        if is_async_node(type(self)):
            result = self.execute()
        else:
            result = await anyio.to_thread.run_sync(self.execute)
        if inspect.isawaitable(result):
            return await result
        return result


def is_async_node(node: type[BaseNode]) -> bool:
    """Whether ``node.execute`` is a coroutine function (else it runs in a worker thread)."""
    return inspect.iscoroutinefunction(node.execute)
