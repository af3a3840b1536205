"""The egress proxy process: `python -m egress.proxy_process --control-socket PATH --confdir DIR`.

A bare mitmproxy `Master` with the four built-in addons it needs (core, proxyserver, next_layer,
tlsconfig) plus `EgressAddon`. Not `DumpMaster`: its ErrorCheck addon calls sys.exit() when startup
logs an error (a port conflict), and its console addons are useless here. It starts with no
listeners; the gateway adds one per sandbox with `bind` over the control socket.

The CA lives in `--confdir` (mitmproxy generates it on first start); the gateway gives every proxy
it starts during one boot the same fresh confdir, so a restarted proxy keeps the CA that running
sandboxes already trust. The process exits when its parent dies (PR_SET_PDEATHSIG), on SIGTERM, or
when the gateway's control connection goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import logging
import os
import signal
import sys
from typing import Any

from mitmproxy import options
from mitmproxy.addons import core, next_layer, proxyserver, tlsconfig
from mitmproxy.master import Master

from egress.addon import EgressAddon
from egress.audit import AuditRecord
from egress.proxy_control import ProxyControl

log = logging.getLogger("egress.proxy")

PR_SET_PDEATHSIG = 1
CA_CERT_NAME = "mitmproxy-ca-cert.pem"


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        sys.exit(0)


def build_options(confdir: str) -> options.Options:
    return options.Options(confdir=confdir, mode=[])


def tune(opts: options.Options, upstream_ca: str | None) -> None:
    """Options owned by addons can only be set once the addons are loaded."""
    upd: dict[str, object] = {
        "connection_strategy": "lazy",  # never connect upstream before the policy has spoken
        "stream_large_bodies": "5m",
        "body_size_limit": "64m",
        "ssl_insecure": False,
        "http3": False,
        "rawtcp": True,  # detect non-HTTP tunnels so that tcp_start can refuse them
    }
    if upstream_ca:
        # Setting only the CA file would replace the system store; the confdir adds it back.
        upd["ssl_verify_upstream_trusted_ca"] = upstream_ca
        upd["ssl_verify_upstream_trusted_confdir"] = "/etc/ssl/certs"
    opts.update(**upd)  # type: ignore[no-untyped-call]


async def run(control_socket: str, confdir: str, upstream_ca: str | None) -> int:
    os.makedirs(confdir, mode=0o700, exist_ok=True)
    opts = build_options(confdir)
    master = Master(opts)
    control: ProxyControl | None = None

    async def resolve(sandbox_id: str, credential_id: str) -> str | None:
        return await control.resolve_secret(sandbox_id, credential_id) if control else None

    def audit(rec: AuditRecord) -> None:
        if control is not None:
            control.audit(rec)

    addon = EgressAddon(secret_resolver=resolve, audit_sink=audit)
    master.addons.add(  # type: ignore[no-untyped-call]
        core.Core(),
        proxyserver.Proxyserver(),  # type: ignore[no-untyped-call]
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        addon,
    )
    tune(opts, upstream_ca)
    task = asyncio.create_task(master.run(), name="mitmproxy")
    await asyncio.wait_for(addon.started.wait(), 30)
    ca_cert = os.path.join(confdir, CA_CERT_NAME)
    control = ProxyControl(master, addon, ca_cert)
    server = await control.serve(control_socket)
    gc.collect()
    gc.freeze()  # start-up objects out of the collector's sight: full collections stay short under load

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiters: list[asyncio.Future[Any]] = [
        asyncio.create_task(stop.wait()),
        asyncio.create_task(control.closed.wait()),
        task,
    ]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    rc = 1 if task.done() else 0  # mitmproxy stopping on its own is a failure
    server.close()
    if not task.done():
        await control.proxyserver.servers.update([])  # Master.shutdown() leaves the listeners open
        await control.close_connections()
        master.shutdown()  # type: ignore[no-untyped-call]
        await asyncio.wait_for(task, 10)
    for w in waiters:
        w.cancel()
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="egress.proxy_process", description=__doc__.splitlines()[0])
    ap.add_argument("--control-socket", required=True)
    ap.add_argument("--confdir", required=True)
    ap.add_argument("--upstream-ca", default=None, help="extra CA file trusted for upstream servers")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="egress-proxy %(levelname)s %(name)s: %(message)s")
    _die_with_parent()
    return asyncio.run(run(args.control_socket, args.confdir, args.upstream_ca))


if __name__ == "__main__":
    sys.exit(main())
