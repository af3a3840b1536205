"""Proxy-process side of the control channel (see `egress.control` for the wire format).

`ProxyControl` owns the inline secrets, the listener set and the event fan-out, and applies the
gateway's ops to the running mitmproxy master and the `EgressAddon`. Listeners are one
`regular@HOST_IP:PORT` per sandbox veth, added with the binding and removed with it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
from collections.abc import Mapping
from typing import Any

from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.master import Master
from mitmproxy.proxy.mode_specs import ProxyMode

from egress.addon import EgressAddon
from egress.audit import AuditRecord
from egress.control import MAX_LINE, ControlError, encode, listener_spec, read_message
from egress.policy import policy_from_dict

log = logging.getLogger(__name__)

SECRET_TIMEOUT = 5.0
_BACKLOG = 10_000  # audit events kept while no gateway is connected
_CLOSE_TIMEOUT = 5.0
_HIGH_WATER = 8 * 1024 * 1024  # bytes queued toward a slow gateway before events are dropped


class ProxyControl:
    """Proxy side of the control channel."""

    def __init__(self, master: Master, addon: EgressAddon, ca_cert: str) -> None:
        self.master = master
        self.addon = addon
        self.ca_cert = ca_cert
        self._inline: dict[str, dict[str, str]] = {}  # sandbox_id -> credential_id -> secret
        self._bound_ids: dict[str, str] = {}  # sandbox_ip -> sandbox_id
        self._sandbox_listener: dict[str, str] = {}  # sandbox_ip -> listener spec
        self._extra_listeners: set[str] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._backlog: collections.deque[bytes] = collections.deque(maxlen=_BACKLOG)
        self._pending: dict[int, asyncio.Future[str | None]] = {}
        self._rids = itertools.count(1)
        self._op_lock = asyncio.Lock()
        self.dropped_events = 0
        self.closed = asyncio.Event()  # set when the last gateway connection goes away

    @property
    def proxyserver(self) -> Proxyserver:
        ps = self.master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
        assert isinstance(ps, Proxyserver)
        return ps

    # --- socket -----------------------------------------------------------------------------------

    async def serve(self, path: str) -> asyncio.Server:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        old = os.umask(0o177)  # the socket is born 0600: no window where others could connect
        try:
            server = await asyncio.start_unix_server(self._client, path=path, limit=MAX_LINE)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        return server

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        while self._backlog:
            writer.write(self._backlog.popleft())
        ops: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        worker = asyncio.create_task(self._worker(ops, writer))
        try:
            while True:
                try:
                    msg = await read_message(reader)
                except (ValueError, asyncio.LimitOverrunError) as e:
                    log.warning("bad control message: %s", e)
                    break
                if msg is None:
                    break
                if msg.get("op") == "secret":
                    # Answered at once, never queued behind a slow op: a request waits for it.
                    self._secret_reply(msg)
                else:
                    ops.put_nowait(msg)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            ops.put_nowait(None)
            await worker
            writer.close()
            if not self._writers:
                self.closed.set()

    async def _worker(self, ops: asyncio.Queue[dict[str, Any] | None], writer: asyncio.StreamWriter) -> None:
        while (msg := await ops.get()) is not None:
            rid = msg.get("id")
            try:
                async with self._op_lock:
                    result = await self.dispatch(msg)
                reply = {"id": rid, "ok": True, **result}
            except (ControlError, ValueError, KeyError, TypeError) as e:
                reply = {"id": rid, "ok": False, "error": f"{type(e).__name__}: {e}"}
            if not writer.is_closing():
                writer.write(encode(reply))
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    # --- events -----------------------------------------------------------------------------------

    def _emit(self, msg: Mapping[str, Any]) -> bool:
        data = encode(msg)
        sent = False
        for w in list(self._writers):
            if w.is_closing():
                continue
            if w.transport.get_write_buffer_size() > _HIGH_WATER:
                self.dropped_events += 1
                continue
            w.write(data)
            sent = True
        if not self._writers:
            if len(self._backlog) == self._backlog.maxlen:
                self.dropped_events += 1
            self._backlog.append(data)
        return sent

    def audit(self, record: AuditRecord) -> None:
        self._emit({"event": "audit", "record": record.to_dict()})

    async def resolve_secret(self, sandbox_id: str, credential_id: str) -> str | None:
        inline = self._inline.get(sandbox_id, {})
        if credential_id in inline:
            return inline[credential_id]
        if not self._writers:
            return None
        rid = next(self._rids)
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            msg = {"event": "secret_request", "rid": rid}
            if not self._emit({**msg, "sandbox_id": sandbox_id, "credential_id": credential_id}):
                return None
            return await asyncio.wait_for(fut, SECRET_TIMEOUT)
        except TimeoutError:
            log.warning("secret %s/%s: no answer from the gateway", sandbox_id, credential_id)
            return None
        finally:
            self._pending.pop(rid, None)

    def _secret_reply(self, msg: Mapping[str, Any]) -> None:
        fut = self._pending.get(int(msg.get("rid", 0)))
        value = msg.get("value")
        if fut is not None and not fut.done():
            fut.set_result(value if isinstance(value, str) else None)

    # --- ops --------------------------------------------------------------------------------------

    async def dispatch(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "ping":
            return {"pid": os.getpid(), "ca_cert": self.ca_cert, "listeners": self._listen_addrs()}
        if op == "bind":
            return await self._bind(msg)
        if op == "unbind":
            return await self._unbind(str(msg["sandbox_ip"]))
        if op == "listeners":
            add = {str(ProxyMode.parse(s).full_spec) for s in msg.get("add", ())}
            remove = {str(ProxyMode.parse(s).full_spec) for s in msg.get("remove", ())}
            self._extra_listeners = (self._extra_listeners | add) - remove
            await self._apply_listeners(must_listen=add)
            return {"listeners": self._listen_addrs()}
        if op == "stats":
            return {
                "stats": {
                    **self.addon.stats(),
                    "dropped_events": self.dropped_events,
                    "proxy_connections": len(self.proxyserver.connections),
                    "listeners": len(self._listen_addrs()),
                }
            }
        raise ControlError(f"unknown op {op!r}")

    async def _bind(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        sandbox_ip, host_ip, port = str(msg["sandbox_ip"]), str(msg["host_ip"]), int(msg["port"])
        policy = policy_from_dict(msg["policy"])
        secrets = msg.get("secrets")
        spec = listener_spec(host_ip, port)
        previous = self._sandbox_listener.get(sandbox_ip)
        self._sandbox_listener[sandbox_ip] = spec
        try:
            await self._apply_listeners(must_listen={spec})
        except ControlError:
            if previous is None:
                self._sandbox_listener.pop(sandbox_ip, None)
            else:
                self._sandbox_listener[sandbox_ip] = previous
            raise
        old_id = self._bound_ids.get(sandbox_ip)
        if old_id is not None and old_id != policy.sandbox_id:
            self._inline.pop(old_id, None)
        self._bound_ids[sandbox_ip] = policy.sandbox_id
        if isinstance(secrets, dict):
            self._inline[policy.sandbox_id] = {str(k): str(v) for k, v in secrets.items()}
        else:
            self._inline.pop(policy.sandbox_id, None)  # refs: asked from the gateway per request
        self.addon.bind(sandbox_ip, host_ip, policy)
        return {"listen": spec}

    async def _unbind(self, sandbox_ip: str) -> dict[str, Any]:
        self.addon.unbind(sandbox_ip)
        sid = self._bound_ids.pop(sandbox_ip, None)
        if sid is not None:
            self._inline.pop(sid, None)
        self._sandbox_listener.pop(sandbox_ip, None)
        closed = await self.close_connections(sandbox_ip)
        await self._apply_listeners(must_listen=set())
        return {"closed_connections": closed}

    async def _apply_listeners(self, must_listen: set[str]) -> None:
        """Bring mitmproxy's listeners in line with the bindings; fail if a required one did not bind."""
        want = set(self._sandbox_listener.values()) | self._extra_listeners
        ps = self.proxyserver
        await ps.servers.update([ProxyMode.parse(s) for s in sorted(want)])
        failed = [s for s in must_listen if s in want and not ps.servers[s].listen_addrs]
        if failed:
            # A listener that could not bind (address missing, port taken) is only logged by
            # mitmproxy; drop it again and report.
            for s in failed:
                self._extra_listeners.discard(s)
                for ip, spec in list(self._sandbox_listener.items()):
                    if spec == s:
                        del self._sandbox_listener[ip]
            want = set(self._sandbox_listener.values()) | self._extra_listeners
            await ps.servers.update([ProxyMode.parse(s) for s in sorted(want)])
            raise ControlError(f"could not listen on {', '.join(sorted(failed))}")

    def _listen_addrs(self) -> list[str]:
        return sorted(f"{a[0]}:{a[1]}" for a in self.proxyserver.listen_addrs())

    async def close_connections(self, peer_ip: str | None = None) -> int:
        """Abort live client connections (all, or those of one sandbox); returns how many."""
        ps = self.proxyserver
        handlers = [
            h
            for h in list(ps.connections.values())
            if peer_ip is None or (h.client.peername and h.client.peername[0] == peer_ip)
        ]
        for h in handlers:
            io = h.transports.get(h.client)
            if io is not None and io.handler is not None:
                io.handler.cancel("egress binding removed")
        # mitmproxy offers no completion signal for a cancelled handler; poll briefly, bounded.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CLOSE_TIMEOUT
        while any(h in ps.connections.values() for h in handlers) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return len(handlers)
