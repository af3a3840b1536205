"""What every benchmark stage shares: the data dir, the bench registry, installs, gateways, progress lines.

Server installs are cached in one data dir (`GIG_BENCH_DATA_DIR`, default /var/tmp/gigmcp-bench) so a
rerun does not pip/npm install again; each gateway gets its own database and log there, removed when
it stops cleanly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BENCH_REGISTRY = BENCH / "registry"
BUNDLED_REGISTRY = REPO / "registry"
DATA_DIR = Path(os.environ.get("GIG_BENCH_DATA_DIR", "/var/tmp/gigmcp-bench"))
# tests.support.gateway reads this when it places databases, logs and installs.
os.environ["GIG_TEST_DATA_DIR"] = str(DATA_DIR)

from gateway.catalog import Catalog  # noqa: E402
from gateway.config import Config, load_config  # noqa: E402
from gateway.installer import InstalledLayout, install  # noqa: E402
from gateway.manifest import Manifest  # noqa: E402
from tests.support.gateway import TOKEN, Gateway, shared_data_dir  # noqa: E402

# Interface prefixes of every sandbox network this run made (checked for leftovers at the end).
NET_PREFIXES: list[str] = ["gbs", "gbe"]

__all__ = [
    "BENCH_REGISTRY",
    "BUNDLED_REGISTRY",
    "DATA_DIR",
    "NET_PREFIXES",
    "REPO",
    "TOKEN",
    "Progress",
    "bench_config",
    "ensure_installed",
    "gateway",
    "shared_data_dir",
]


class Progress:
    """One line per step with the time since the run started, flushed at once (the run is long)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.stage = ""

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, message: str) -> None:
        e = self.elapsed()
        prefix = f"[{int(e) // 60:02d}:{e % 60:04.1f}]"
        print(f"{prefix} {self.stage + ': ' if self.stage else ''}{message}", flush=True)


def bench_config() -> Config:
    return load_config({"GIG_BEARER_TOKEN": TOKEN, "GIG_DATA_DIR": str(shared_data_dir()),
                        "GIG_REGISTRY_DIR": str(BENCH_REGISTRY)})


async def ensure_installed(name: str, registry: Path = BENCH_REGISTRY) -> tuple[Manifest, InstalledLayout]:
    """Install a catalog server into the bench data dir once (the installer's stamp makes reruns free)."""
    entry = Catalog.load(registry).get(name)
    if entry is None:
        raise RuntimeError(f"{name} is not in {registry}")
    layout = await install(entry.manifest, servers_dir=shared_data_dir() / "servers", source_root=entry.source_root,
                           python=bench_config().sandbox_python, registry_dir=entry.registry_dir,
                           lock_text=entry.lock_text)
    return entry.manifest, layout


@contextlib.contextmanager
def gateway(install: str, env: dict[str, str] | None = None) -> Iterator[Gateway]:
    """A gateway subprocess on the bench registry; its database and log go when it stops cleanly."""
    gw = Gateway(install=install, env={"GIG_REGISTRY_DIR": str(BENCH_REGISTRY), **(env or {})})
    NET_PREFIXES.append(gw.if_prefix)
    gw.start()
    ok = False
    try:
        yield gw
        ok = True
    finally:
        code = gw.stop(timeout=120)
        if ok and gw.log_path is not None:
            # gw-<port>.log, .db, .db-wal, .db-shm, .db.spool/ ...: this gateway's own files only.
            for path in gw.log_path.parent.glob(f"gw-{gw.port}.*"):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        path.unlink()
        elif gw.log_path is not None:
            print(f"gateway log kept: {gw.log_path} (exit {code})", file=sys.stderr)


def plain_env(extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {"PATH": "/usr/bin:/bin", **(extra or {})}
