"""Lenient relay: repair what a backend lists so that one odd entry never breaks a whole list.

The front door validates every result against the protocol's types; a real server such as the
archived `server-gitlab` sends `inputSchema` without `type`. Repairable entries are repaired (the
spec requires an object schema, so `type: object` is added); entries that still do not validate are
dropped with a warning, and the rest of that server's list is kept.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

_MODELS: dict[str, type[BaseModel]] = {
    "tools/list": types.Tool,
    "prompts/list": types.Prompt,
    "resources/list": types.Resource,
    "resources/templates/list": types.ResourceTemplate,
}


def repair_tool(tool: dict[str, Any]) -> dict[str, Any]:
    fixed = dict(tool)
    schema = fixed.get("inputSchema")
    if not isinstance(schema, dict):
        schema = {}
    if schema.get("type") != "object":
        schema = {**schema, "type": "object"}
    fixed["inputSchema"] = schema
    output = fixed.get("outputSchema")
    if output is not None and (not isinstance(output, dict) or output.get("type") != "object"):
        fixed.pop("outputSchema")  # a tool without an output schema is still callable
    return fixed


def repair_items(method: str, server: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    model = _MODELS[method]
    kept = []
    for item in items:
        candidate = repair_tool(item) if method == "tools/list" else item
        try:
            model.model_validate(candidate, by_name=False)
        except ValidationError as exc:
            log.warning("dropping an invalid entry of %s from server %s: %s", method, server,
                        exc.errors(include_url=False, include_input=False)[:2])
            continue
        kept.append(candidate)
    return kept
