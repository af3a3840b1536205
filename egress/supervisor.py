"""Gateway side of the egress proxy: start it, keep it alive, tell it about sandboxes.

`EgressSupervisor` runs `python -m egress.proxy_process` as a child, talks to it over the control
socket, restarts it with exponential backoff when it dies and then re-sends every current binding,
answers its secret requests from a resolver (so rotated or refreshed tokens apply per request), and
hands audit records to a callback and to any `events()` iterators.

The proxy runs in its own process so that TLS handshakes and hooks under load never stall the
gateway's event loop. One working directory (0700) is made per supervisor: the CA in its confdir is
kept across proxy restarts (running sandboxes trust it) and removed with the directory at `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from egress.audit import AuditRecord
from egress.control import MAX_LINE, encode, read_message
from egress.policy import SandboxPolicy, policy_to_dict

log = logging.getLogger(__name__)

SecretLookup = Callable[[str, str], Awaitable[str | None] | str | None]
"""(sandbox_id, credential_id) -> secret; sync or async (vault read, OAuth refresh)."""
AuditCallback = Callable[[AuditRecord], Awaitable[None] | None]


# So that `python -m egress.proxy_process` works even when gigmcp is not installed in the interpreter.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ProxyUnavailable(Exception):
    """The proxy process is down (restarting) or did not answer in time."""


class ProxyRefused(Exception):
    """The proxy process answered with an error (bad policy, listener could not bind, ...)."""


@dataclass(frozen=True, slots=True)
class _Binding:
    sandbox_ip: str
    host_ip: str
    policy: SandboxPolicy
    secrets: Mapping[str, str] | None


class EgressSupervisor:
    def __init__(
        self,
        *,
        port: int = 3128,
        upstream_ca: str | None = None,
        secret_resolver: SecretLookup | None = None,
        audit_sink: AuditCallback | None = None,
        workdir: str | None = None,
        python: str = sys.executable,
        start_timeout: float = 30.0,
        request_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        log_level: str = "WARNING",
    ) -> None:
        self.port = port
        self._upstream_ca = upstream_ca
        self._resolver = secret_resolver
        self._sink = audit_sink
        self._own_workdir = workdir is None
        self._workdir = workdir
        self._python = python
        self._start_timeout = start_timeout
        self._request_timeout = request_timeout
        self._backoff = backoff
        self._log_level = log_level
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._ready = asyncio.Event()
        self._bindings: dict[str, _Binding] = {}
        self._extra_listeners: set[str] = set()
        self._subscribers: set[asyncio.Queue[AuditRecord]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._monitor: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0
        self.ca_cert_path = ""

    # --- public API -------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def proxy_url(self, host_ip: str) -> str:
        """What a sandbox behind `host_ip` puts in HTTP(S)_PROXY."""
        return f"http://{host_ip}:{self.port}"

    async def start(self) -> None:
        """Start the proxy and wait until it answers; raises if the first start fails."""
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="gigmcp-egress-")
        os.chmod(self._workdir, 0o700)
        await self._launch()
        self._monitor = asyncio.create_task(self._supervise(), name="egress-supervisor")

    async def bind(
        self,
        sandbox_ip: str,
        host_ip: str,
        policy: SandboxPolicy,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        """Route `sandbox_ip` (arriving on a listener at `host_ip`) through `policy`.

        `secrets` maps credential ids to values sent once with the binding; without it, every
        credential is asked from the secret resolver per request. The binding is remembered and
        re-sent after a proxy restart; while the proxy is down this waits up to `request_timeout`
        and then raises ProxyUnavailable (the binding still applies once the proxy is back).
        """
        b = _Binding(sandbox_ip, host_ip, policy, dict(secrets) if secrets is not None else None)
        self._bindings[sandbox_ip] = b
        try:
            await self._request(self._bind_msg(b))
        except ProxyRefused:
            self._bindings.pop(sandbox_ip, None)
            raise

    async def unbind(self, sandbox_ip: str) -> None:
        """Forget a sandbox: its listener closes and its live connections are aborted."""
        if self._bindings.pop(sandbox_ip, None) is None:
            return
        with contextlib.suppress(ProxyUnavailable):  # a restarting proxy will not learn it again
            await self._request({"op": "unbind", "sandbox_ip": sandbox_ip})

    async def listeners(self, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> list[str]:
        """Extra listeners (mode specs such as "regular@127.0.0.1:3129"), kept across restarts."""
        self._extra_listeners = (self._extra_listeners | set(add)) - set(remove)
        reply = await self._request({"op": "listeners", "add": list(add), "remove": list(remove)})
        return [str(x) for x in reply.get("listeners", [])]

    async def ping(self) -> dict[str, Any]:
        return await self._request({"op": "ping"})

    async def stats(self) -> dict[str, Any]:
        reply = await self._request({"op": "stats"})
        return {**reply.get("stats", {}), "restarts": self.restarts}

    async def events(self, maxsize: int = 10_000) -> AsyncIterator[AuditRecord]:
        """Audit records from now on. A slow consumer loses the oldest records, never blocks the proxy."""
        q: asyncio.Queue[AuditRecord] = asyncio.Queue(maxsize)
        self._subscribers.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers.discard(q)

    async def stop(self) -> None:
        self._stopping = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self._terminate()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._own_workdir and self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)  # the CA key goes with it

    # --- process ----------------------------------------------------------------------------------

    def _spawn_task(self, coro: Awaitable[Any], name: str) -> None:
        t: asyncio.Task[Any] = asyncio.ensure_future(coro)
        t.set_name(name)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _launch(self) -> None:
        assert self._workdir is not None
        sock = os.path.join(self._workdir, "control.sock")
        confdir = os.path.join(self._workdir, "confdir")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock)
        argv = [
            self._python,
            "-m",
            "egress.proxy_process",
            "--control-socket",
            sock,
            "--confdir",
            confdir,
            "--log-level",
            self._log_level,
        ]
        if self._upstream_ca:
            argv += ["--upstream-ca", self._upstream_ca]
        env = dict(os.environ)
        root = _PACKAGE_ROOT
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        self._proc = proc
        assert proc.stderr is not None
        self._spawn_task(self._forward_stderr(proc.stderr), "egress-stderr")
        try:
            reader, writer = await self._connect(sock, proc)
            self._writer = writer
            self._spawn_task(self._read(reader, proc), "egress-control-reader")
            info = await self._call({"op": "ping"})
            self.ca_cert_path = str(info["ca_cert"])
            for name in sorted(self._extra_listeners):
                await self._call({"op": "listeners", "add": [name]})
            for b in list(self._bindings.values()):
                try:
                    await self._call(self._bind_msg(b))
                except ProxyRefused as e:
                    log.error("egress: binding for %s dropped on restart: %s", b.sandbox_ip, e)
                    self._bindings.pop(b.sandbox_ip, None)
        except BaseException:
            await self._terminate()
            raise
        self._ready.set()
        log.info("egress proxy ready (pid %s, %d bindings)", proc.pid, len(self._bindings))

    async def _connect(
        self, sock: str, proc: asyncio.subprocess.Process
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        deadline = time.monotonic() + self._start_timeout
        while True:
            if proc.returncode is not None:
                raise ProxyUnavailable(f"egress proxy exited during start (rc={proc.returncode})")
            try:
                return await asyncio.open_unix_connection(sock, limit=MAX_LINE)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise ProxyUnavailable("egress proxy did not open its control socket in time") from None
                await asyncio.sleep(0.02)

    async def _forward_stderr(self, stream: asyncio.StreamReader) -> None:
        # Lines look like "egress-proxy LEVEL logger: message" (see proxy_process.main).
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            parts = text.split(" ", 2)
            level = logging.getLevelName(parts[1]) if len(parts) > 2 else logging.WARNING
            log.log(level if isinstance(level, int) else logging.WARNING, "%s", text)

    async def _supervise(self) -> None:
        delay = self._backoff[0]
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            rc = await proc.wait()
            if self._stopping:
                return
            self._down(f"egress proxy exited (rc={rc})")
            if time.monotonic() - started > 30:
                delay = self._backoff[0]  # it ran fine for a while: not a crash loop
            while not self._stopping:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                try:
                    await self._launch()
                except (ProxyUnavailable, OSError, ProxyRefused) as e:
                    log.error("egress proxy restart failed: %s", e)
                    continue
                self.restarts += 1
                break

    def _down(self, why: str) -> None:
        log.warning("%s; restarting", why)
        self._ready.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ProxyUnavailable(why))
        self._pending.clear()

    async def _terminate(self) -> None:
        proc = self._proc
        self._ready.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    # --- control channel --------------------------------------------------------------------------

    def _bind_msg(self, b: _Binding) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "op": "bind",
            "sandbox_ip": b.sandbox_ip,
            "host_ip": b.host_ip,
            "port": self.port,
            "policy": policy_to_dict(b.policy),
        }
        if b.secrets is not None:
            msg["secrets"] = dict(b.secrets)
        return msg

    async def _request(self, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.wait_for(self._ready.wait(), self._request_timeout)
        except TimeoutError:
            raise ProxyUnavailable("egress proxy is not running") from None
        return await self._call(msg)

    async def _call(self, msg: dict[str, Any]) -> dict[str, Any]:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ProxyUnavailable("no control connection")
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            writer.write(encode({**msg, "id": rid}))
            await writer.drain()
            reply = await asyncio.wait_for(fut, self._request_timeout)
        except TimeoutError:
            raise ProxyUnavailable(f"egress proxy did not answer {msg.get('op')!r}") from None
        except ConnectionError as e:
            raise ProxyUnavailable(str(e)) from None
        finally:
            self._pending.pop(rid, None)
        if not reply.get("ok"):
            raise ProxyRefused(str(reply.get("error", "refused")))
        return reply

    async def _read(self, reader: asyncio.StreamReader, proc: asyncio.subprocess.Process) -> None:
        try:
            while (msg := await read_message(reader)) is not None:
                if "id" in msg and "event" not in msg:
                    fut = self._pending.get(int(msg["id"] or 0))
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif msg.get("event") == "audit":
                    self._deliver(AuditRecord.from_dict(msg["record"]))
                elif msg.get("event") == "secret_request":
                    self._spawn_task(self._answer_secret(msg), "egress-secret")
        except (ValueError, ConnectionError) as e:
            log.error("egress control channel broken: %s", e)
        # The channel is gone: make sure the process is too, so that the supervisor restarts it.
        if proc.returncode is None and not self._stopping:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def _deliver(self, rec: AuditRecord) -> None:
        for q in list(self._subscribers):
            if q.full():
                q.get_nowait()
            q.put_nowait(rec)
        if self._sink is not None:
            try:
                r = self._sink(rec)
                if inspect.isawaitable(r):
                    self._spawn_task(r, "egress-audit-sink")
            except Exception:
                log.exception("audit sink failed")

    async def _answer_secret(self, msg: Mapping[str, Any]) -> None:
        value: str | None = None
        if self._resolver is not None:
            try:
                r = self._resolver(str(msg["sandbox_id"]), str(msg["credential_id"]))
                value = await r if inspect.isawaitable(r) else r
            except Exception:
                log.exception("secret resolver failed for %s/%s", msg.get("sandbox_id"), msg.get("credential_id"))
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(encode({"op": "secret", "rid": msg["rid"], "value": value}))
