"""Run the `@modelcontextprotocol/conformance` server suite against a URL and report the outcome.

    code, output = run_conformance("0.1.16", url, EXPECTED_0_1_16)
    code, output = run_conformance("0.2", url, EXPECTED_0_2, ["--requirements", "2026-07-28"])
    print(summary(output))

Exit code 0 means every failure is listed in the expected-failures file and no listed
scenario passes any more (a stale entry fails the run too). Note: once a baseline file is
given, the suite counts a WARNING check like a FAILURE for that comparison. The suite has no
option to send headers, so the URL must answer unauthenticated (and be a loopback host for
the DNS-rebinding scenario).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tests.e2e.tools import conformance_cmd

HERE = Path(__file__).resolve().parent
EXPECTED_0_1_16 = HERE / "expected-failures-0.1.16.yml"
EXPECTED_0_2 = HERE / "expected-failures-0.2.yml"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_conformance(
    version: Literal["0.1.16", "0.2"],
    url: str,
    expected_failures_file: Path | str | None,
    extra_args: Sequence[str] = (),
    timeout: float = 900,
) -> tuple[int, str]:
    """Run `conformance server --url URL` (all active scenarios unless `extra_args` narrow it).

    Returns the exit code and the combined stdout/stderr with colour codes stripped.
    """
    cmd = [*conformance_cmd(version), "server", "--url", url, *extra_args]
    if expected_failures_file is not None:
        baseline = Path(expected_failures_file).resolve()
        if not baseline.is_file():
            raise FileNotFoundError(f"expected-failures file {baseline} does not exist")
        cmd += ["--expected-failures", str(baseline)]
    # The suite writes nothing to its cwd without -o, but keep any stray output out of the repo.
    with tempfile.TemporaryDirectory(prefix="conformance-") as cwd:
        proc = subprocess.run(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
        )
    return proc.returncode, _ANSI.sub("", proc.stdout)


def summary(output: str) -> str:
    """The suite's closing part: per-scenario counts, totals and the baseline verdict."""
    start = output.rfind("=== SUMMARY ===")
    return output[start:].strip() if start != -1 else output[-4000:].strip()
