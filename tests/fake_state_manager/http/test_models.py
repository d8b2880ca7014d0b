"""Tests of the request/response models (contract §2, §4.1)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from exo_ref._models import GraphNodeModel, StoreConfigModel, UnitesModel
from fake_state_manager._graph import models as g
from fake_state_manager._http import requests as s
from fake_state_manager._http import responses as r

NODE = {"node_name": "N", "namespace": "ns", "identifier": "a", "inputs": {}}


def errors(model: type[BaseModel], body: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


@pytest.mark.parametrize(
    ("model", "body"),
    [
        pytest.param(
            s.RegisterNodesRequest,
            {
                "runtime_name": "rt",
                "runtime_namespace": "dropped",
                "nodes": [
                    {
                        "name": "N",
                        "namespace": "dropped",
                        "inputs_schema": {},
                        "outputs_schema": {},
                        "secrets": [],
                    }
                ],
            },
            id="register",
        ),
        pytest.param(s.UpsertGraphTemplateRequest, {"secrets": {}, "nodes": [NODE]}, id="upsert"),
        pytest.param(s.TriggerGraphRequest, {}, id="trigger"),
        pytest.param(s.EnqueueRequest, {"nodes": ["N"], "batch_size": -5}, id="enqueue"),
        pytest.param(s.ExecutedRequest, {"outputs": []}, id="executed"),
        pytest.param(s.ErroredRequest, {"error": ""}, id="errored"),
        pytest.param(s.PruneRequest, {"data": {}}, id="prune"),
        pytest.param(s.ReEnqueueAfterRequest, {"enqueue_after": 1}, id="re-enqueue"),
        pytest.param(s.ManualRetryRequest, {"fanout_id": "f"}, id="manual-retry"),
    ],
)
def test_minimal_bodies_validate_and_unknown_fields_are_ignored(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    parsed = model.model_validate(body | {"unknown": 1})
    assert "unknown" not in parsed.model_dump()
    assert "runtime_namespace" not in parsed.model_dump()


def test_register_drops_node_namespace() -> None:
    body = s.RegisterNodesRequest.model_validate(
        {
            "runtime_name": "rt",
            "nodes": [
                {
                    "name": "N",
                    "namespace": "x",
                    "inputs_schema": {"a": 1},
                    "outputs_schema": {},
                    "secrets": ["s"],
                }
            ],
        }
    )
    assert body.model_dump()["nodes"] == [
        {"name": "N", "inputs_schema": {"a": 1}, "outputs_schema": {}, "secrets": ["s"]}
    ]


@pytest.mark.parametrize(
    ("model", "body", "loc"),
    [
        pytest.param(s.RegisterNodesRequest, {"runtime_name": "rt"}, ("nodes",), id="no-nodes"),
        pytest.param(
            s.RegisterNodesRequest,
            {
                "runtime_name": "rt",
                "nodes": [{"name": "N", "inputs_schema": {}, "outputs_schema": {}}],
            },
            ("nodes", 0, "secrets"),
            id="secrets-required",
        ),
        pytest.param(s.UpsertGraphTemplateRequest, {"nodes": []}, ("secrets",), id="no-secrets"),
        pytest.param(
            s.UpsertGraphTemplateRequest,
            {"secrets": {"k": 1}, "nodes": []},
            ("secrets", "k"),
            id="secret-not-string",
        ),
        pytest.param(
            s.UpsertGraphTemplateRequest,
            {"secrets": {}, "nodes": [{k: v for k, v in NODE.items() if k != "inputs"}]},
            ("nodes", 0, "inputs"),
            id="inputs-required-server-side",
        ),
        pytest.param(
            s.UpsertGraphTemplateRequest,
            {"secrets": {}, "nodes": [], "retry_policy": {"max_retries": -1}},
            ("retry_policy", "max_retries"),
            id="retry-policy",
        ),
        pytest.param(
            s.UpsertGraphTemplateRequest,
            {"secrets": {}, "nodes": [], "store_config": {"required_keys": ["a.b"]}},
            ("store_config", "required_keys"),
            id="store-config",
        ),
        pytest.param(
            s.UpsertGraphTemplateRequest,
            {"secrets": {}, "nodes": [], "triggers": [{"type": "WEBHOOK", "value": {}}]},
            ("triggers", 0, "type"),
            id="trigger-type",
        ),
        pytest.param(
            s.UpsertGraphTemplateRequest,
            {"secrets": {}, "nodes": [], "triggers": [{"type": "CRON", "value": {}}]},
            ("triggers", 0, "expression"),
            id="trigger-expression-missing",
        ),
        pytest.param(
            s.UpsertGraphTemplateRequest,
            {"secrets": {}, "nodes": [], "triggers": [{"type": "CRON"}]},
            ("triggers", 0, "expression"),
            id="trigger-value-missing",
        ),
        pytest.param(
            s.UpsertGraphTemplateRequest,
            {"secrets": {}, "nodes": [], "triggers": [{"type": "CRON", "value": {"x": 1}}]},
            ("triggers", 0, "value", "x"),
            id="trigger-value-not-str",
        ),
        pytest.param(s.TriggerGraphRequest, {"inputs": {"a": 1}}, ("inputs", "a"), id="input-int"),
        pytest.param(
            s.TriggerGraphRequest, {"store": {"a": None}}, ("store", "a"), id="store-null"
        ),
        pytest.param(s.TriggerGraphRequest, {"start_delay": -1}, ("start_delay",), id="delay"),
        pytest.param(s.EnqueueRequest, {"nodes": ["N"]}, ("batch_size",), id="batch-missing"),
        pytest.param(s.EnqueueRequest, {"nodes": "N", "batch_size": 1}, ("nodes",), id="nodes-str"),
        pytest.param(s.ExecutedRequest, {}, ("outputs",), id="outputs-missing"),
        pytest.param(s.ExecutedRequest, {"outputs": [1]}, ("outputs", 0), id="output-not-object"),
        pytest.param(s.ErroredRequest, {"error": 3}, ("error",), id="error-int"),
        pytest.param(s.PruneRequest, {}, ("data",), id="data-missing"),
        pytest.param(s.PruneRequest, {"data": []}, ("data",), id="data-list"),
        pytest.param(s.ReEnqueueAfterRequest, {"enqueue_after": 0}, ("enqueue_after",), id="zero"),
        pytest.param(s.ReEnqueueAfterRequest, {"enqueue_after": -1}, ("enqueue_after",), id="neg"),
        pytest.param(s.ManualRetryRequest, {}, ("fanout_id",), id="fanout-missing"),
    ],
)
def test_invalid_bodies_report_the_field(
    model: type[BaseModel], body: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    assert loc in [found for found, _ in errors(model, body)]


def test_invalid_cron_expression_is_located_as_upstream_locates_it() -> None:
    # contract §4.1: upstream checks `value` inside the trigger's own validator, so the loc has
    # no "value" segment (recorded from the upstream server).
    body = {
        "secrets": {},
        "nodes": [],
        "triggers": [{"type": "CRON", "value": {"expression": "x"}}],
    }
    assert errors(s.UpsertGraphTemplateRequest, body) == [
        (("triggers", 0, "expression"), "Value error, Invalid cron expression")
    ]


def test_trigger_value_keeps_extra_keys_as_upstream_stores_them() -> None:
    body = s.UpsertGraphTemplateRequest.model_validate(
        {
            "secrets": {},
            "nodes": [],
            "triggers": [{"type": "CRON", "value": {"expression": "@daily", "note": "n"}}],
        }
    )
    assert body.model_dump(mode="json")["triggers"] == [
        {"type": "CRON", "value": {"expression": "@daily", "note": "n"}}
    ]


def test_upsert_defaults_and_valid_trigger() -> None:
    body = s.UpsertGraphTemplateRequest.model_validate(
        {
            "secrets": {"k": "v"},
            "nodes": [NODE],
            "triggers": [{"type": "CRON", "value": {"expression": "@daily"}}],
        }
    )
    dumped = body.model_dump(mode="json")
    assert dumped["retry_policy"]["strategy"] == "EXPONENTIAL"
    assert dumped["store_config"] == {"required_keys": [], "default_values": {}}
    assert dumped["triggers"] == [{"type": "CRON", "value": {"expression": "@daily"}}]


def test_node_template_reuses_the_sdk_rules_with_server_class_names() -> None:
    assert issubclass(g.NodeTemplate, GraphNodeModel)
    assert issubclass(g.Unites, UnitesModel)
    assert issubclass(g.StoreConfig, StoreConfigModel)
    node = g.NodeTemplate.model_validate(
        NODE | {"identifier": " b ", "unites": {"identifier": " a"}}
    )
    assert node.identifier == "b"
    assert repr(node) == (
        "NodeTemplate(node_name='N', namespace='ns', identifier='b', inputs={}, next_nodes=None, "
        "unites=Unites(identifier='a', strategy=<UnitesStrategyEnum.ALL_SUCCESS: 'ALL_SUCCESS'>))"
    )
    assert errors(g.NodeTemplate, NODE | {"identifier": "store"}) == [
        (("identifier",), "Value error, Node identifier cannot be reserved word 'store'")
    ]


def test_lax_mode_accepts_numeric_strings_like_fastapi() -> None:
    assert s.EnqueueRequest.model_validate({"nodes": [], "batch_size": "3"}).batch_size == 3


@pytest.mark.parametrize(
    ("module", "name"),
    [(m, name) for m in (g, s, r) for name in sorted(m.__all__)],
)
def test_every_exported_model_has_a_json_schema(module: Any, name: str) -> None:
    obj = getattr(module, name)
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        schema = obj.model_json_schema()
        assert schema["type"] == "object"


def test_documents_use_the_underscore_id_key() -> None:
    properties = r.RegisteredNodeDocument.model_json_schema()["properties"]
    assert "_id" in properties
    assert "id" not in properties
    doc = r.RegisteredNodeDocument.model_validate(
        {
            "_id": "0" * 24,
            "created_at": "2026-01-01T00:00:00",
            "updated_at": "2026-01-01T00:00:00",
            "name": "N",
            "namespace": "ns",
            "runtime_name": "rt",
            "runtime_namespace": "ns",
            "inputs_schema": {},
            "outputs_schema": {},
            "secrets": [],
        }
    )
    assert doc.model_dump(mode="json")["_id"] == "0" * 24


