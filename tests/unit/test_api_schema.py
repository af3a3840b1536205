"""The API's strict body validation and the OpenAPI document built from the route table."""

from __future__ import annotations

import pytest

from gateway.api import ROUTES
from gateway.api.core import PATH_PARAMS
from gateway.api.openapi import build_document
from gateway.api.schema import SchemaError, boolean, integer, nullable, obj, string, validate

BODY = obj({"name": string(pattern=r"^[a-z]+$"), "days": integer(minimum=1, maximum=10), "on": boolean(),
            "note": nullable(string(max_length=3))}, ["name"])


def test_valid_bodies_pass() -> None:
    validate(BODY, {"name": "abc"})
    validate(BODY, {"name": "abc", "days": 10, "on": False, "note": None})
    validate(BODY, {"name": "abc", "days": 3.0})  # JSON Schema: a number with no fraction is an integer


@pytest.mark.parametrize(("value", "message"), [
    ({"name": "abc", "extra": 1}, "unknown field 'extra'"),
    ({}, "missing required field 'name'"),
    ({"name": "abc\n"}, "field 'name' is not valid"),  # a Python `$` would have let the newline through
    ({"name": "ABC"}, "field 'name' is not valid"),
    ({"name": "a", "days": True}, "field 'days' must be a whole number"),
    ({"name": "a", "days": 1.5}, "field 'days' must be a whole number"),
    ({"name": "a", "days": "1"}, "field 'days' must be a whole number"),
    ({"name": "a", "days": 11}, "at most 10"),
    ({"name": "a", "on": "yes"}, "field 'on' must be true or false"),
    ({"name": "a", "note": "toolong"}, "at most 3 characters"),
    ([], "the body must be a JSON object"),
])
def test_invalid_bodies_name_the_field(value: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        validate(BODY, value)


def test_unanchored_patterns_are_refused() -> None:
    with pytest.raises(ValueError, match="anchored"):
        string(pattern="[a-z]+")


def test_openapi_document_covers_every_route() -> None:
    doc = build_document(ROUTES, version="1", server_url="http://gw")
    assert doc["openapi"].startswith("3.1")
    operations = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert operations == {(r.method, r.path) for r in ROUTES}
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for route in ROUTES:
        assert set(route.path_params) <= set(PATH_PARAMS), route.path
        for reply in route.replies.values():
            if reply.schema and "$ref" in reply.schema:
                assert reply.schema["$ref"].rsplit("/", 1)[1] in doc["components"]["schemas"]
