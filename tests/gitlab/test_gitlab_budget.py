"""tools/list size per surface, held under a budget (bytes/4 ~ tokens), and schema portability of listed tools."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_gitlab import Running

from .conftest import env_for, inproc

# Budgets in bytes of the serialized tools/list result (≈ 4 bytes per token).
BUDGETS = {"dynamic": 8_000, "domains": 64_000, "individual": 180_000}


def _check_schema(schema: dict[str, Any], where: str) -> None:
    assert schema.get("type"), f"{where}: no type"
    if schema["type"] == "array":
        assert isinstance(schema.get("items"), dict), f"{where}: array without items"
        _check_schema(schema["items"], where + "[]")
    if schema["type"] == "object":
        for name, prop in (schema.get("properties") or {}).items():
            _check_schema(prop, f"{where}.{name}")


@pytest.mark.parametrize("surface", list(BUDGETS))
async def test_tools_list_budget(fake: Running, surface: str) -> None:
    async with inproc(env_for(fake, GITLAB_TOOL_SURFACE=surface)) as client:
        result = await client.list_tools()
    payload = result.model_dump_json(by_alias=True, exclude_none=True)
    size = len(payload.encode())
    print(f"{surface}: {len(result.tools)} tools, {size} bytes, ~{size // 4} tokens")
    assert size < BUDGETS[surface], f"{surface} tools/list is {size} bytes, budget {BUDGETS[surface]}"
    if surface == "dynamic":
        assert size // 4 < 2_000
    for tool in result.tools:
        _check_schema(tool.input_schema, tool.name)
        assert tool.annotations is not None
        hints = (tool.annotations.read_only_hint, tool.annotations.destructive_hint, tool.annotations.idempotent_hint)
        assert all(isinstance(h, bool) for h in hints), tool.name
        assert len(tool.name) <= 64 and tool.name.replace("_", "").isalnum()
