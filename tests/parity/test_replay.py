"""Parity with the upstream state manager: replay recorded conversations against the fake.

``upstream-corpus.json`` (next to this file; copied into the repository on 2026-12-01) holds
conversations recorded against the upstream state manager (commit 08a2e6d, run unmodified); each
answer upstream gave the same way on two runs is kept, normalised. Every conversation is played
here against the in-process fake, each answer normalised the same way and compared with the
recording, twice: in-process (``httpx.ASGITransport``) and served over loopback by uvicorn
(:meth:`FakeStateManager.serve`, real sockets and HTTP parsing in the test's event loop, so the
same manual clock drives both). A mismatch names the conversation and the answer and shows both
sides. Fields where
the fake deliberately differs from upstream are exempted in ``EXEMPTIONS``, each naming its row
of ``docs/fidelity.md``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import pytest

from fake_state_manager import FakeStateManager, ManualClock

HERE = Path(__file__).resolve().parent
CORPUS = json.loads((HERE / "upstream-corpus.json").read_text(encoding="utf-8"))
FIDELITY = HERE.parents[1] / "docs" / "fidelity.md"
KEY = "parity-key"
CONVERSATION_TIMEOUT = 30.0

# Deliberate deviations (docs/fidelity.md), field by field:
# (answer name pattern (fnmatch), dotted field path in the body,
#  exact phrase of the docs/fidelity.md row, why).
EXEMPTIONS: list[tuple[str, str, str, str]] = [
    (
        "get-graph",
        field,
        "GET graph always shows the default `retry_policy` / `store_config` / `triggers`",
        "upstream's GET graph ignores the stored values (plain server bug); the fake shows them",
    )
    for field in ("retry_policy", "store_config", "triggers")
]


# --------------------------------------------------------------------------- normalisation

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_OID = re.compile(r"\b[0-9a-fA-F]{24}\b")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def normalise_str(text: str, ns: str) -> str:
    cut = text.find(" [type=")
    if cut >= 0:
        text = text[:cut]
    text = text.replace(ns, "<ns>")
    text = _UUID.sub("<uuid>", text)
    text = _OID.sub("<id>", text)
    return _ISO.sub("<ts>", text)


def normalise(value: Any, ns: str) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in ("created_at", "updated_at"):
                out[key] = "<ts>"
            elif key == "enqueue_after" and isinstance(item, int) and not isinstance(item, bool):
                out[key] = "<ms>"
            else:
                out[key] = normalise(item, ns)
        return out
    if isinstance(value, list):
        items = [normalise(item, ns) for item in value]
        if items and all(isinstance(item, dict) for item in items):
            items.sort(key=_sort_key)
        return items
    if isinstance(value, str):
        return normalise_str(value, ns)
    return value


def normalise_answer(status: int, body: Any, ns: str) -> Any:
    if status == 422 and isinstance(body, dict) and isinstance(body.get("detail"), list):
        pairs = [[err.get("type"), list(err.get("loc", []))] for err in body["detail"]]
        return {"detail": sorted(pairs, key=_sort_key)}
    return normalise(body, ns)


def _drop(body: Any, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(body, dict) or part not in body:
            return
        body = body[part]
    if isinstance(body, dict):
        body.pop(last, None)


def apply_exemptions(name: str, body: Any) -> Any:
    body = json.loads(json.dumps(body))
    for pattern, field, _phrase, _why in EXEMPTIONS:
        if fnmatch.fnmatchcase(name, pattern):
            _drop(body, field)
    return body


# --------------------------------------------------------------------------- diff rendering


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True) if value is not _MISSING else "<missing>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_MISSING = object()


def diff(upstream: Any, ours: Any, path: str = "") -> list[str]:
    """Compact list of differing leaves: ``path: upstream=... | ours=...``."""
    if isinstance(upstream, dict) and isinstance(ours, dict):
        lines: list[str] = []
        for key in list(upstream) + [k for k in ours if k not in upstream]:
            lines += diff(
                upstream.get(key, _MISSING),
                ours.get(key, _MISSING),
                f"{path}.{key}" if path else key,
            )
        return lines
    if isinstance(upstream, list) and isinstance(ours, list) and len(upstream) == len(ours):
        lines = []
        for i, (u, o) in enumerate(zip(upstream, ours, strict=True)):
            lines += diff(u, o, f"{path}[{i}]")
        return lines
    if upstream is not _MISSING and ours is not _MISSING and upstream == ours:
        return []
    return [f"    {path or '<body>'}: upstream={_short(upstream)} | ours={_short(ours)}"]


# --------------------------------------------------------------------------- replay


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


def _dig(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


_IN = re.compile(r"\{in_(\w+)\}")


def _with_inputs(value: Any, inputs: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _IN.sub(lambda m: str(inputs.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: _with_inputs(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_inputs(v, inputs) for v in value]
    return value


def _report(prefix: str, state: dict[str, Any], act: dict[str, Any]) -> tuple[str, Any]:
    state_id = state["state_id"]
    ((kind, arg),) = act.items()
    if kind == "executed":
        return f"{prefix}/state/{state_id}/executed", {
            "outputs": _with_inputs(arg, state["inputs"])
        }
    if kind == "errored":
        return f"{prefix}/state/{state_id}/errored", {"error": arg}
    if kind == "prune":
        return f"{prefix}/state/{state_id}/prune", {"data": arg}
    if kind == "requeue":
        return f"{prefix}/state/{state_id}/re-enqueue-after", {"enqueue_after": arg}
    raise AssertionError(f"unknown drain act {act!r}")


Mode = Literal["in_process", "served"]


@asynccontextmanager
async def _client(sm: FakeStateManager, mode: Mode) -> AsyncIterator[httpx.AsyncClient]:
    if mode == "in_process":
        async with sm.client() as client:
            yield client
        return
    async with sm.serve() as uri, httpx.AsyncClient(
        base_url=uri, headers={"x-api-key": KEY}, timeout=CONVERSATION_TIMEOUT
    ) as client:
        yield client


async def play(
    conversation: dict[str, Any], ns: str, mode: Mode = "in_process"
) -> list[tuple[str, int, Any]]:
    """Play one conversation; return ``(answer name, status, raw JSON body)`` in order."""
    answers: list[tuple[str, int, Any]] = []
    names: dict[str, str] = {"ns": ns}
    clock = ManualClock(auto_advance=False)

    def record(name: str, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        answers.append((name, response.status_code, body))
        return body

    sm = FakeStateManager(api_key=KEY, clock=clock, seed=0)
    async with sm, _client(sm, mode) as client:
        for step in conversation["steps"]:
            op = step["op"]
            if op == "http":
                kwargs = {"json": _fill(step["body"], names)} if "body" in step else {}
                response = await client.request(
                    step["method"], _fill(step["path"], names), **kwargs
                )
                body = record(step["name"], response)
                for save_as, dotted in step.get("save", {}).items():
                    names[save_as] = str(_dig(body, dotted))
            elif op == "settle":
                clock.advance(step["seconds"])
                if mode == "in_process":
                    await anyio.wait_all_tasks_blocked()
                # Served: uvicorn's own tasks wake on real time, so "every task blocked" may take
                # long on a loaded machine. Nothing needs it: due states and cron triggers are
                # settled lazily at the start of the next request (contract §3.3, §4.7).
            elif op == "drain":
                prefix = f"/v0/namespace/{ns}"
                response = await client.post(
                    f"{prefix}/states/enqueue",
                    json={"nodes": step["nodes"], "batch_size": step["batch"]},
                )
                body = record(f"{step['name']}:enqueue", response)
                states = body.get("states", []) if isinstance(body, dict) else []
                states = sorted(states, key=lambda s: (s["identifier"], _sort_key(s["inputs"])))
                for state in states:
                    act = step["act"].get(state["identifier"], {"executed": [{}]})
                    path, payload = _report(prefix, state, act)
                    record(
                        f"{step['name']}:{state['identifier']}",
                        await client.post(path, json=payload),
                    )
            else:
                raise AssertionError(f"unknown step op {op!r}")
    return answers


def compare(
    conversation: dict[str, Any], answers: list[tuple[str, int, Any]], ns: str
) -> list[str]:
    """Every difference between the recording and our answers, as short readable lines."""
    ours: dict[str, list[tuple[int, Any]]] = {}
    for name, status, body in answers:
        ours.setdefault(name, []).append((status, normalise_answer(status, body, ns)))
    seen: dict[str, int] = {}
    problems: list[str] = []
    for name, status, body in conversation["expect"]:
        index = seen.get(name, 0)
        seen[name] = index + 1
        label = name if index == 0 and len(ours.get(name, [])) <= 1 else f"{name}#{index}"
        if index >= len(ours.get(name, [])):
            problems.append(
                f"  {label}: upstream answered {status} {_short(body)}; we gave no such answer"
            )
            continue
        our_status, our_body = ours[name][index]
        lines = []
        if status is not None and status != our_status:
            lines.append(f"    <status>: upstream={status} | ours={our_status}")
        if body is not None:
            lines += diff(apply_exemptions(name, body), apply_exemptions(name, our_body))
        if lines:
            problems.append(f"  {label}:\n" + "\n".join(lines))
    for name, items in ours.items():
        for index in range(seen.get(name, 0), len(items)):
            status, body = items[index]
            problems.append(
                f"  {name}#{index}: we answered {status} {_short(body)};"
                " upstream gave no such answer"
            )
    return problems


CONVERSATIONS = CORPUS["conversations"]


def _check(conversation: dict[str, Any], answers: list[tuple[str, int, Any]], ns: str) -> None:
    problems = compare(conversation, answers, ns)
    if problems:
        pytest.fail(
            f"conversation {conversation['name']} "
            f"({json.dumps(conversation['shape'], sort_keys=True)}): "
            f"{len(problems)} answer(s) differ from upstream\n" + "\n".join(problems),
            pytrace=False,
        )


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=[c["name"] for c in CONVERSATIONS])
async def test_replay_matches_upstream(conversation: dict[str, Any]) -> None:
    ns = f"parity-{conversation['name']}-{uuid.uuid4().hex[:8]}"
    with anyio.fail_after(CONVERSATION_TIMEOUT):
        answers = await play(conversation, ns)
    _check(conversation, answers, ns)


# uvicorn runs on asyncio only; the in-process replay above covers trio.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=[c["name"] for c in CONVERSATIONS])
async def test_served_replay_matches_upstream(conversation: dict[str, Any]) -> None:
    ns = f"parity-{conversation['name']}-{uuid.uuid4().hex[:8]}"
    with anyio.fail_after(CONVERSATION_TIMEOUT):
        answers = await play(conversation, ns, mode="served")
    _check(conversation, answers, ns)


def test_every_exemption_names_a_fidelity_row() -> None:
    rows = [
        line for line in FIDELITY.read_text(encoding="utf-8").splitlines() if line.startswith("|")
    ]
    missing = [
        (pattern, field, phrase)
        for pattern, field, phrase, _why in EXEMPTIONS
        if not any(phrase in row for row in rows)
    ]
    assert not missing, f"exemptions whose docs/fidelity.md row is gone: {missing}"


def test_corpus_is_the_recorded_one() -> None:
    """Guard against an accidentally emptied or truncated copy of the corpus."""
    assert CORPUS["recorded_from"] == "upstream state manager"
    assert len(CONVERSATIONS) == 20
    assert all(c["expect"] for c in CONVERSATIONS)
