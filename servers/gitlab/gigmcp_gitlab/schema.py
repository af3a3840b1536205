"""Argument validation and forgiving coercion against an action's parameter list.

Models send numbers as strings, labels as "a,b", nulls for omitted values and near-miss names
(`project_id`, `merge_request_iid`); all of those are accepted and normalised. Anything still wrong
is reported in one error that names every problem and the valid parameter names.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from .actions.model import Action, Param
from .errors import ToolError

ALIASES = {
    "project_id": "project",
    "projectid": "project",
    "project_path": "project",
    "repo": "project",
    "merge_request_iid": "mr_iid",
    "merge_request_id": "mr_iid",
    "mr_id": "mr_iid",
    "mr": "mr_iid",
    "issue_id": "issue_iid",
    "issue": "issue_iid",
    "group_id": "group",
    "group_path": "group",
    "pipeline": "pipeline_id",
    "job": "job_id",
    "file_path": "path",
    "filepath": "path",
    "file": "path",
    "branch_name": "branch",
    "ref_name": "ref",
    "tag_name": "tag",
    "comment": "body",
    "message": "body",
    "text": "body",
    "note": "body",
    "per-page": "per_page",
    "limit": "per_page",
    "q": "query",
    "search": "query",
    "line_number": "line",
    "new_line": "line",
    "description": "body",
}


def _alias(name: str, action: Action) -> str | None:
    key = name.lower().replace("-", "_")
    if action.param(key) is not None:
        return key
    target = ALIASES.get(key)
    if target and action.param(target) is not None:
        return target
    if key == "iid":
        iids = [p.name for p in action.params if p.name.endswith("_iid")]
        return iids[0] if len(iids) == 1 else None
    if key == "id":
        ids = [p.name for p in action.params if p.required and p.ref and p.name not in ("project", "group")]
        return ids[0] if len(ids) == 1 else None
    return None


class CoercionError(ValueError):
    """A value that cannot be coerced to its parameter's type."""


def _scalar(value: Any, typ: str, name: str) -> Any:
    if typ == "string":
        if isinstance(value, bool):
            raise CoercionError(f"`{name}` must be a string")
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, str):
            return value
        raise CoercionError(f"`{name}` must be a string")
    if typ == "integer":
        if isinstance(value, bool):
            raise CoercionError(f"`{name}` must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise CoercionError(f"`{name}` must be an integer, got {value!r}")
    if typ == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        try:
            return float(str(value))
        except ValueError:
            raise CoercionError(f"`{name}` must be a number") from None
    if typ == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise CoercionError(f"`{name}` must be true or false")
    if typ == "object":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise CoercionError(f"`{name}` must be an object") from None
        if not isinstance(value, dict):
            raise CoercionError(f"`{name}` must be an object")
        return value
    return value


def _enum(value: Any, allowed: list[str] | tuple[str, ...], name: str) -> Any:
    if not allowed or not isinstance(value, str):
        return value
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise CoercionError(f"`{name}` must be one of {', '.join(allowed)}; got {value!r}")


def _item(value: Any, schema: Mapping[str, Any], name: str) -> Any:
    typ = str(schema.get("type", "string"))
    value = _scalar(value, typ, name)
    if "enum" in schema:
        value = _enum(value, list(schema["enum"]), name)
    if typ == "object" and isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        for key in schema.get("required", []):
            if value.get(key) in (None, ""):
                raise CoercionError(f"each `{name}` item needs `{key}`")
        unknown = [k for k in value if props and k not in props]
        if unknown:
            raise CoercionError(f"`{name}` items accept only {', '.join(props)}; unknown: {', '.join(unknown)}")
        value = {k: _item(v, props[k], f"{name}.{k}") if k in props else v for k, v in value.items() if v is not None}
    return value


def coerce(p: Param, value: Any) -> Any:
    """Coerce one value to the parameter's type; raises CoercionError with a readable reason."""
    if p.type == "integer" and p.ref and isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        return value.strip()  # a URL or reference; resolved by the executor
    if p.type == "array":
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError:
                    raise CoercionError(f"`{p.name}` must be an array") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        elif not isinstance(value, list):
            value = [value]
        item_schema: Mapping[str, Any] = p.items or {"type": "string"}
        return [_item(v, item_schema, p.name) for v in value if v is not None]
    value = _scalar(value, p.type, p.name)
    value = _enum(value, p.enum, p.name)
    if isinstance(value, int) and not isinstance(value, bool):
        if p.minimum is not None and value < p.minimum:
            raise CoercionError(f"`{p.name}` must be >= {p.minimum}")
        if p.maximum is not None and value > p.maximum:
            value = p.maximum
    return value


def validate(action: Action, raw: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Return (coerced args, notes about renamed parameters) or raise ToolError listing all problems."""
    args: dict[str, Any] = {}
    notes: list[str] = []
    problems: list[str] = []
    names = [p.name for p in action.params]
    for key, value in (raw or {}).items():
        if value is None:
            continue
        target = _alias(key, action)
        if target is None:
            close = difflib.get_close_matches(key, names, n=2, cutoff=0.6)
            problems.append(f"unknown parameter `{key}`" + (f" (did you mean {', '.join(close)}?)" if close else ""))
            continue
        if target != key:
            if target in (raw or {}):
                continue
            notes.append(f"{key}->{target}")
        p = action.param(target)
        assert p is not None
        try:
            args[target] = coerce(p, value)
        except CoercionError as exc:
            problems.append(str(exc))
    if problems:
        raise ToolError(
            f"Invalid parameters for {action.name}: " + "; ".join(problems) + ".",
            hint=f"Valid parameters: {', '.join(names) or '(none)'}.",
            data={"input_schema": action.input_schema()},
        )
    return args, notes


def missing_required(action: Action, args: Mapping[str, Any]) -> list[str]:
    return [p.name for p in action.params if p.required and args.get(p.name) in (None, "", [])]
