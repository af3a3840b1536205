"""The gateway benchmarks on their own: the `calls` and `startup` stages of `bench/run` (see bench/runner.py).

    sudo .venv/bin/python -m bench.bench_gateway [--quick]

Results go to bench/results/quick/ (a partial run never touches the docs). `RawClient` is the light
legacy-era client under the name docs/performance.md's profiling notes use.
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp

from bench.common import TOKEN
from bench.mcpclient import RawMcp
from bench.runner import main


class RawClient(RawMcp):
    """A 2025-11-25 session with the bench token; `call()` with no arguments calls `echo_echo`."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        super().__init__(http, url, TOKEN, "legacy")

    async def call(self, tool: str = "echo_echo", arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return await super().call(tool, arguments if arguments is not None else {"message": "x"})


if __name__ == "__main__":
    sys.exit(main(["--only", "calls,startup", *sys.argv[1:]]))
