"""Every curl example of the Conference API spec, replayed in order against the app.

The examples live in ``tests/data/api/curl_examples.json`` (path, body, documented status and
response sample). Each answer must have the documented status and the documented shape: every
key of the sample (recursively, lists by their first item) with a value of the same JSON type,
except the deviations the data file names with a reason.
"""

from __future__ import annotations

import io
import json
import re
import wave
from pathlib import Path
from typing import Any

import httpx

from conf_server.domain.attributes import Role
from tests.conf_server.api.conftest import ADMIN, BASE, World, basic

DATA = Path(__file__).resolve().parents[2] / "data" / "api" / "curl_examples.json"
_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")


def wav_bytes(seconds: float = 0.5, rate: int = 8000, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x01\x00" * int(seconds * rate) * channels)
    return out.getvalue()


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _object_problems(
    doc: dict[str, Any], got: Any, path: str, missing: set[str], types: set[str]
) -> list[str]:
    if not isinstance(got, dict):
        return [f"{path or 'body'}: expected an object, got {got!r}"]
    problems: list[str] = []
    for key, value in doc.items():
        where = f"{path}.{key}" if path else key
        if where in missing:
            continue
        if key not in got:
            problems.append(f"{where}: missing")
            continue
        problems += shape_problems(value, got[key], where, missing, types)
    return problems


def shape_problems(doc: Any, got: Any, path: str, missing: set[str], types: set[str]) -> list[str]:
    """How ``got`` differs from the documented sample ``doc`` (empty: same shape)."""
    if isinstance(doc, dict):
        return _object_problems(doc, got, path, missing, types)
    if isinstance(doc, list):
        if not isinstance(got, list):
            return [f"{path}: expected an array, got {got!r}"]
        if doc and got:
            return shape_problems(doc[0], got[0], f"{path}[]", missing, types)
        return []
    if doc is None or path in types or _json_type(doc) == _json_type(got):
        return []
    return [f"{path}: documented {_json_type(doc)}, got {got!r}"]


def _lookup(body: Any, dotted: str) -> Any:
    node = body
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    return node


def _absent(body: Any, dotted: str) -> bool:
    head, _, key = dotted.rpartition(".")
    if head.endswith("[]"):
        return all(key not in item for item in body[head[:-2]])
    return dotted not in body


def _fill(text: str, ids: dict[str, object]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(ids[m.group(1)]), text)


async def _send(world: World, case: dict[str, Any], ids: dict[str, object]) -> httpx.Response:
    url = BASE + _fill(case["path"], ids)
    headers = basic(ADMIN)
    if "upload_first" in case or "upload" in case:
        name = case.get("upload_first") or case["upload"]
        files = {"file": (name, wav_bytes(), "audio/wav")}
        upload_url = url.rsplit("/", 1)[0] if "upload_first" in case else url
        sent = await world.client.post(upload_url, headers=headers, files=files)
        assert sent.status_code == 200, sent.text
        if "upload" in case:
            return sent
    body = case.get("body")
    if body is not None:
        headers["Content-Type"] = "application/json"
        return await world.client.request(
            case["method"], url, headers=headers, content=_fill(body, ids)
        )
    return await world.client.request(case["method"], url, headers=headers)


def _check(case: dict[str, Any], response: httpx.Response) -> list[str]:
    name = case["name"]
    if response.status_code != case["status"]:
        return [
            f"{name}: status {response.status_code}, documented {case['status']}: {response.text}"
        ]
    if case["status"] == 204:
        return [] if response.content == b"" else [f"{name}: 204 with a body"]
    body = response.json()
    deviations = case.get("deviations", {})
    missing, types = set(deviations.get("missing", [])), set(deviations.get("types", []))
    problems = [f"{name}: {p}" for p in shape_problems(case["response"], body, "", missing, types)]
    for dotted, value in case.get("expect", {}).items():
        got = len(body) if dotted == "length" else _lookup(body, dotted)
        if got != value:
            problems.append(f"{name}: {dotted} is {got!r}, expected {value!r}")
    problems += [f"{name}: {k} present" for k in case.get("absent", []) if not _absent(body, k)]
    return problems


async def test_every_curl_example_gives_the_documented_status_and_shape(world: World) -> None:
    examples = json.loads(DATA.read_text())["examples"]
    assert len(examples) >= 45  # the spec's Conference API examples, none dropped
    world.bridge.join("c1", world.alice_room, Role.HOST)
    world.bridge.join("c2", world.alice_room, Role.PARTICIPANT)
    ids: dict[str, object] = {
        "flow": 3,
        "group": world.group_id,
        "room": world.alice_room,
        "meeting": world.alice_room,
        "call": "c1",
        "call2": "c2",
    }
    problems: list[str] = []
    for case in examples:
        response = await _send(world, case, ids)
        problems += _check(case, response)
        for key, field in case.get("save", {}).items():
            if response.status_code < 300:
                ids[key] = response.json()[field]
    assert problems == []


async def test_replay_leaves_the_documented_effects(world: World) -> None:
    """The DELETEs of the replay really happen: the meeting ended and hung up every call."""
    world.bridge.join("c1", world.alice_room, Role.HOST)
    world.bridge.join("c2", world.alice_room, Role.PARTICIPANT)
    r = await world.client.delete(f"{BASE}/meetings/{world.alice_room}", headers=basic(ADMIN))
    assert r.status_code == 204
    assert world.bridge.calls() == []
    assert world.bridge.svc.meetings() == {}
    again = await world.client.get(f"{BASE}/meetings/{world.alice_room}", headers=basic(ADMIN))
    assert again.status_code == 404
    assert again.json()["message"] == "no item error"


def test_shape_check_catches_a_missing_key_and_a_wrong_type() -> None:
    doc = {"a": 1, "b": [{"c": "x"}]}
    assert shape_problems(doc, {"a": 1, "b": [{"c": "y"}]}, "", set(), set()) == []
    assert shape_problems(doc, {"b": []}, "", set(), set()) == ["a: missing"]
    assert shape_problems(doc, {"a": "1", "b": [{"c": 2}]}, "", set(), set()) == [
        "a: documented number, got '1'",
        "b[].c: documented str, got 2",
    ]
