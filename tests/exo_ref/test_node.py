"""exo_ref._node: BaseNode (contract §8.1)."""

from __future__ import annotations

import threading

import pytest
from pydantic import BaseModel

from exo_ref import BaseNode
from exo_ref._node import is_async_node

from .helpers import EchoNode


class SyncNode(BaseNode):
    class Inputs(BaseModel):
        text: str

    class Outputs(BaseModel):
        thread: str

    def execute(self) -> BaseModel:
        return self.Outputs(thread=str(threading.get_ident()))


def test_base_node_is_abstract_with_empty_models() -> None:
    with pytest.raises(TypeError):
        BaseNode()  # type: ignore[abstract]
    assert BaseNode.Inputs.model_fields == {}
    assert BaseNode.Outputs.model_fields == {}
    assert BaseNode.Secrets.model_fields == {}
    node = EchoNode()
    assert node.inputs is None
    assert node.secrets is None


def test_async_and_sync_nodes_are_told_apart() -> None:
    assert is_async_node(EchoNode)
    assert not is_async_node(SyncNode)


async def test_upstream_execute_entry_point_sets_inputs_and_secrets() -> None:
    node = EchoNode()
    result = await node._execute(EchoNode.Inputs(text="hi"), EchoNode.Secrets())
    assert result == EchoNode.Outputs(text="hi")
    assert node.inputs == EchoNode.Inputs(text="hi")
    assert node.secrets == EchoNode.Secrets()


async def test_sync_execute_runs_in_a_worker_thread() -> None:
    node = SyncNode()
    result = await node._execute(SyncNode.Inputs(text="x"), SyncNode.Secrets())
    assert isinstance(result, SyncNode.Outputs)
    assert result.thread != str(threading.get_ident())
