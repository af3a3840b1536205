"""JSON Schema, written once: the same dicts validate request bodies and describe them in OpenAPI.

Only the subset the API uses is supported by `validate` (object, string, integer, boolean, null and
`anyOf` for nullable values); `$ref` appears only in response schemas, which are documentation.
Patterns are always anchored (`^...$`) and checked with `re.fullmatch` on the inside, because a
Python `$` also matches before a trailing newline and would let `"name\\n"` through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

Schema = dict[str, Any]

COMPONENTS: dict[str, Schema] = {}


class SchemaError(ValueError):
    """A value does not match its schema; the message names the field."""


def component(name: str, schema: Schema) -> Schema:
    """Register a named schema for the OpenAPI document and return a reference to it."""
    if name in COMPONENTS and COMPONENTS[name] != schema:
        raise ValueError(f"schema component {name!r} is defined twice")
    COMPONENTS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def string(
    *, pattern: str | None = None, min_length: int | None = None, max_length: int | None = None,
    fmt: str | None = None, description: str | None = None, enum: Sequence[str] | None = None,
) -> Schema:
    schema: Schema = {"type": "string"}
    if pattern is not None:
        if not (pattern.startswith("^") and pattern.endswith("$")):
            raise ValueError(f"pattern {pattern!r} must be anchored with ^...$")
        schema["pattern"] = pattern
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if fmt is not None:
        schema["format"] = fmt
    if enum is not None:
        schema["enum"] = list(enum)
    if description:
        schema["description"] = description
    return schema


def integer(*, minimum: int | None = None, maximum: int | None = None, description: str | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    if description:
        schema["description"] = description
    return schema


def boolean(description: str | None = None) -> Schema:
    return {"type": "boolean", **({"description": description} if description else {})}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: Mapping[str, Schema], required: Sequence[str] = (), *, open_map: Schema | None = None) -> Schema:
    """An object with exactly these properties (unknown ones are refused), or a map of `open_map` values."""
    schema: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = open_map if open_map is not None else False
    return schema


ANY_JSON: Schema = {}
TIMESTAMP = string(fmt="date-time", description="RFC 3339, UTC")


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern[1:-1])


def _where(path: str) -> str:
    return f"field '{path}'" if path else "the body"


def validate(schema: Schema, value: Any, path: str = "") -> None:
    """Raise `SchemaError` naming the first field of `value` that `schema` does not accept."""
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                validate(option, value, path)
                return
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(errors[0])
    kind = schema.get("type")
    if kind == "null":
        if value is not None:
            raise SchemaError(f"{_where(path)} must be null")
    elif kind == "object":
        _validate_object(schema, value, path)
    elif kind == "string":
        _validate_string(schema, value, path)
    elif kind == "integer":
        # JSON Schema counts 538.0 as an integer; Python's bool is an int but is no number here.
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise SchemaError(f"{_where(path)} must be a whole number")
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{_where(path)} must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{_where(path)} must be at most {schema['maximum']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise SchemaError(f"{_where(path)} must be true or false")
    else:
        raise ValueError(f"validate() does not support schema {schema!r}")


def _validate_object(schema: Schema, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise SchemaError(f"{_where(path)} must be a JSON object")
    properties: Mapping[str, Schema] = schema.get("properties", {})
    extra = schema.get("additionalProperties", False)
    for key in value:
        if key not in properties and extra is False:
            raise SchemaError(f"unknown field '{path + '.' if path else ''}{key}'")
    for key in schema.get("required", ()):
        if key not in value:
            raise SchemaError(f"missing required field '{path + '.' if path else ''}{key}'")
    for key, item in value.items():
        sub = f"{path}.{key}" if path else str(key)
        if key in properties:
            validate(properties[key], item, sub)
        elif isinstance(extra, dict):
            validate(extra, item, sub)


def _validate_string(schema: Schema, value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise SchemaError(f"{_where(path)} must be a string")
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise SchemaError(f"{_where(path)} must be at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaError(f"{_where(path)} must be at most {schema['maxLength']} characters")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{_where(path)} must be one of {', '.join(schema['enum'])}")
    if "pattern" in schema and not _compiled(schema["pattern"]).fullmatch(value):
        raise SchemaError(f"{_where(path)} is not valid (expected {schema['pattern']})")
