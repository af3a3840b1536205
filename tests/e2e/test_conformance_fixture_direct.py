"""The conformance fixture server passes the conformance suites on its own, with no gateway.

The fixture (tests/fixtures/conformance_server) is served by the SDK's own Streamable HTTP
app (`--http PORT`, same handlers as its stdio mode) and checked with conformance 0.1.16 (all
active scenarios) and 0.2.0-alpha.12 (`--requirements 2026-07-28`) against the expected-
failure baselines in tests/e2e/conformance/. A gateway test that fronts the same fixture can
then blame any new failure on the gateway. Needs the tools from scripts/install-test-tools.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conformance.runner import EXPECTED_0_1_16, EXPECTED_0_2, run_conformance, summary
from tests.e2e.tools import REPO

pytestmark = pytest.mark.node


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fixture server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"fixture server did not listen on port {port} within {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def fixture_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("fixture-server") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.conformance_server", "--http", str(port)],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, proc, log)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("version", "baseline", "extra_args"),
    [
        ("0.1.16", EXPECTED_0_1_16, ()),
        ("0.2", EXPECTED_0_2, ("--requirements", "2026-07-28")),
    ],
    ids=["0.1.16-active", "0.2-requirements-2026-07-28"],
)
def test_fixture_server_passes_conformance(
    fixture_server_url: str,
    capsys: pytest.CaptureFixture[str],
    version: str,
    baseline: Path,
    extra_args: tuple[str, ...],
) -> None:
    code, output = run_conformance(version, fixture_server_url, baseline, extra_args)  # type: ignore[arg-type]
    with capsys.disabled():
        print(f"\n--- conformance {version} {' '.join(extra_args)} vs fixture server ---\n{summary(output)}")
    assert code == 0, f"conformance {version} exited {code}:\n{output[-8000:]}"
