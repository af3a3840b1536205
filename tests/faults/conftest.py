"""Fixtures of the fault drill: a private PKI, a TLS upstream on loopback, and the drill's registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.support import write_registry
from tests.integration.conftest_egress import Pki, Upstream, make_pki, start_upstream


@pytest.fixture(scope="session")
def drill_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("drill-pki"))


@pytest.fixture(scope="session")
async def drill_upstream(drill_pki: Pki) -> AsyncIterator[Upstream]:
    up, runners = await start_upstream(drill_pki)
    yield up
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(scope="session")
def drill_registry(drill_upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_registry(tmp_path_factory.mktemp("drill-registry"), drill_upstream.https_port)
