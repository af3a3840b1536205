"""Schemathesis against /api/openapi.json: no 5xx, and every response matches the document (bounded run).

Run with the bootstrap admin token against a gateway that has a master key, an installed server and a
second user, so that the generated requests reach real handlers rather than only 401s and 404s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import api
from tests.support.gateway import TOKEN, Gateway, running_gateway
from vault import generate_key_hex

pytestmark = [pytest.mark.root]
ST = Path(sys.executable).with_name("st")
# A body over the size cap is refused with 413 before it is validated: that is a rejection too.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "409", "413", "415"]
"""
CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
))


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway(env={"GIG_MASTER_KEY": generate_key_hex()}) as gateway:
        assert api(gateway, "POST", "/api/users", {"name": "fuzzed"})[0] == 201
        assert api(gateway, "POST", "/api/consent/echo", {})[0] == 200
        yield gateway


def test_openapi_document_is_served_and_valid(gw: Gateway) -> None:
    status, doc = api(gw, "GET", "/api/openapi.json", token=None)
    assert status == 200 and doc["openapi"] == "3.1.0"
    from jsonschema import Draft202012Validator

    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    assert "/api/credentials/{server}/{credential_id}" in doc["paths"]


@pytest.mark.skipif(shutil.which(str(ST)) is None, reason="schemathesis is not installed (pip install -e .[dev])")
def test_schemathesis_finds_no_server_error_and_no_schema_violation(gw: Gateway, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [str(ST), "--config-file", str(config), "run", f"{gw.url}/api/openapi.json",
         "-H", f"Authorization: Bearer {TOKEN}", "--checks", CHECKS,
         "--phases", "examples,coverage,fuzzing", "--max-examples", "15", "--max-time", "40",
         "--workers", "4", "--seed", "4242", "--no-color", "--report", "ndjson",
         # An install runs pip for seconds (and mutates the instance); installs have tests of their own.
         "--exclude-path", "/api/servers/install", "--request-timeout", "30",
         "--report-dir", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,  # its cache stays out of the repository
    )
    summary = result.stdout[-4000:]
    assert result.returncode == 0, summary
    assert "No issues found" in result.stdout or "passed" in result.stdout, summary
    # The gateway's own code logged no unhandled error while being fuzzed (aiohttp's HTTP parser does log
    # schemathesis's deliberately malformed probe requests, which it answers with 400 itself).
    assert gw.log_path is not None
    records = [json.loads(line) for line in gw.log_path.read_text().splitlines() if line.startswith("{")]
    errors = [r for r in records if r["level"] == "error" and r["logger"].startswith(("gateway", "vault"))]
    assert errors == [], errors[:3]
