"""The aiohttp application: wiring of store, catalog, supervisor and the MCP front door, and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from egress import AuditRecord
from gateway.access import Access
from gateway.api import principal_of, setup_api_routes
from gateway.audit import AuditWriter, BatchWriter
from gateway.auth import Authenticator, Principal, resolve_profile, unauthorized
from gateway.backends import BackendFactory, LiveBackend, SandboxSettings
from gateway.catalog import Catalog, load_catalog
from gateway.config import Config
from gateway.credentials import Credentials, master_key_from_env, open_vault
from gateway.forwarded import ClientView, client_view
from gateway.http_guard import HostPolicy
from gateway.installer import install
from gateway.logs import REQUEST_ID
from gateway.mcp import bridge
from gateway.mcp.aggregator import Member, ProfileAggregate
from gateway.mcp.fastpath import FastPath
from gateway.mcp.frontdoor import SCOPE_KEY, FrontDoor, RequestIdentity
from gateway.metrics import CONTENT_TYPE, LiveSources, Metrics, ToolCallObserver
from gateway.modes import ModePolicy, profile_modes
from gateway.oauth import OAuthService, OAuthSettings, vendors_from_env
from gateway.ratelimit import RateLimiter, address_limit_middleware
from gateway.sandbox_net import EgressSettings, SandboxNetworking
from gateway.store import InstalledServer, Profile, Store
from gateway.store.audit import EgressAudit
from gateway.store.db import StorageFailure, storage_failure
from gateway.store.spool import Spool
from gateway.upgrades import StagedUpgrades
from gateway.web import WEB, setup_web, start_web
from sandbox.supervisor import Supervisor

log = logging.getLogger(__name__)

STATE: web.AppKey[GatewayState] = web.AppKey("gigmcp.state")
METRICS: web.AppKey[Metrics] = web.AppKey("gigmcp.metrics")
CLIENT_KEY = "gigmcp.client"  # the request's ClientView (gateway/forwarded.py), set by guard_middleware
HSTS_VALUE = "max-age=31536000"
# Routes limited per client address: token minting and OAuth/OIDC logins (guessing and flooding targets).
ADDRESS_LIMITED = ("/api/tokens", "/oauth/callback", "/auth/login", "/auth/callback")
_REQUEST_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(slots=True)
class GatewayState:
    config: Config
    store: Store
    catalog: Catalog
    auth: Authenticator
    host_policy: HostPolicy
    frontdoor: FrontDoor
    manager: StreamableHTTPSessionManager
    supervisor: Supervisor[LiveBackend]
    audit: AuditWriter | None = None
    networking: SandboxNetworking | None = None
    access: Access | None = None  # consent gate and tool toggles (set at start)
    credentials: Credentials | None = None  # vault-sealed secrets; the egress resolver's source
    oauth: OAuthService | None = None  # OAuth vendors and connected accounts; fresh tokens for the resolver
    installed: dict[str, InstalledServer] = field(default_factory=dict)
    upgrades: StagedUpgrades | None = None  # versions held for users who have not approved an upgrade yet
    aggregates: dict[int, ProfileAggregate] = field(default_factory=dict)
    fastpath: FastPath | None = None  # tools/call answered beside the SDK (GIG_FAST_PATH)
    started_at: float = field(default_factory=time.monotonic)  # for uptime: immune to clock steps

    async def aggregate_for(self, profile: Profile) -> ProfileAggregate:
        agg = self.aggregates.get(profile.id)
        if agg is None:
            names = [n for n in await self.store.profiles.server_names(profile.id) if n in self.installed]
            members = [Member(n, prefixed=n not in self.config.unprefixed_servers) for n in names]
            lease = self.access.gated(profile.user_id, self.supervisor.lease) if self.access else self.supervisor.lease
            if self.upgrades is not None:
                lease = self.upgrades.lease(profile.user_id, lease, self.supervisor.lease)
            enabled_tool = await self.access.tool_filter(profile.id) if self.access else None
            modes = ModePolicy(self.config.read_only, self.config.safe_mode) | await profile_modes(
                self.store.conn, profile.id)
            agg = ProfileAggregate(
                profile.id, members, lease, call_timeout_s=self.config.call_timeout_s, enabled_tool=enabled_tool,
                modes=modes,
            )
            self.aggregates[profile.id] = agg
        return agg

    async def install_server(self, name: str, *, profile: Profile | None = None,
                             config: Mapping[str, Any] | None = None, staged: bool | None = None) -> InstalledServer:
        entry = self.catalog.get(name)
        if entry is None:
            raise web.HTTPNotFound(reason=f"no server {name!r} in the catalog")
        manifest = entry.resolve(config or {})
        layout = await install(
            manifest,
            servers_dir=self.config.servers_dir,
            source_root=entry.source_root,
            python=self.config.sandbox_python,
            progress=lambda msg: log.info("install: %s", msg),
            registry_dir=entry.registry_dir,
            lock_text=entry.lock_text,
        )
        record = InstalledServer(
            name=manifest.name,
            version=manifest.version,
            manifest_json=manifest.to_json(),
            runtime_hash=manifest.runtime_hash(),
            install_dir=str(layout.root),
        )
        await self.store.servers.record_install(record)
        previous = self.installed.get(name)
        self.installed[name] = record
        if previous and previous.runtime_hash != record.runtime_hash:
            # A new version keeps the old one serving until each user approves the new one; a changed
            # manifest of the same version has no older install to fall back on, so it stops.
            if staged is None:
                staged = previous.version != record.version
            if staged and self.upgrades is not None:
                self.upgrades.stage(previous)  # keeps serving those who approved it, until they approve this one
            else:
                if self.upgrades is not None:
                    self.upgrades.clear(name)
                await self.supervisor.stop_matching(lambda key: isinstance(key, tuple) and key[0] == name, "upgraded")
        if profile is not None:
            await self.store.profiles.add_server(profile.id, name)
        self.aggregates.clear()
        return record


    async def uninstall_server(self, name: str) -> bool:
        """Stop its sandboxes, then remove it and what hangs on it; the install directories go too."""
        if name not in self.installed:
            return False
        await self.supervisor.stop_matching(lambda key: isinstance(key, tuple) and key[0] == name, "uninstalled")
        if not await self.store.servers.uninstall(name):
            return False
        self.installed.pop(name, None)
        if self.upgrades is not None:
            self.upgrades.clear(name)
        self.aggregates.clear()
        for path in self.config.servers_dir.glob(f"{name}@*"):
            await asyncio.to_thread(shutil.rmtree, path, True)
        return True


# ---- middleware -------------------------------------------------------------------------------
def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@web.middleware
async def guard_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE]
    offered = request.headers.get("X-Request-Id", "")
    # A caller's id is kept for correlation only when it is short and plain (it ends up in every log line).
    request_id = offered if 0 < len(offered) <= 64 and set(offered) <= _REQUEST_ID_CHARS else secrets.token_hex(8)
    request["request_id"] = request_id
    REQUEST_ID.set(request_id)
    view = client_view(request.remote, request.headers, state.config.trust_proxy,
                       scheme="https" if request.secure else "http")
    request[CLIENT_KEY] = view
    started, status = time.monotonic(), 500
    try:
        response = await _guarded(request, handler, state, view, request_id)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if METRICS in request.app:
            # The route template, never the raw path: label values must stay few.
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            metrics = request.app[METRICS]
            metrics.child(metrics.requests, request.method, route, str(status)).inc()
            metrics.child(metrics.request_seconds, route).observe(time.monotonic() - started)
    if view.scheme == "https" and not response.prepared:
        response.headers.setdefault("Strict-Transport-Security", HSTS_VALUE)
    return response


# A request the storage refused (the transaction was rolled back: nothing changed). status, code, log line.
_STORAGE_ERRORS: dict[StorageFailure, tuple[int, str, str, str]] = {
    "full": (507, "storage_full", "the gateway's storage is full; nothing was changed",
             "the database disk is full"),
    "busy": (503, "storage_busy", "the database is locked by another process; nothing was changed, retry shortly",
             "the database is locked by another process"),
    "io": (503, "storage_error", "the gateway's storage failed to read or write; nothing was changed",
           "the database disk failed"),
}


def _storage_error(kind: StorageFailure, exc: Exception, request: web.Request, request_id: str) -> web.Response:
    status, code, message, logged = _STORAGE_ERRORS[kind]
    # With the traceback: which write the storage refused is what an operator needs to know.
    log.error("%s: %s %s refused (%s) (request %s)", logged, request.method, request.path, exc, request_id,
              exc_info=exc)
    headers = {"Retry-After": "2"} if status == 503 else None
    return web.json_response(error_body(code, message), status=status, headers=headers)


def client_of(request: web.Request) -> ClientView:
    """The client as `GIG_TRUST_PROXY` lets the gateway believe it (address, scheme, host)."""
    view = request.get(CLIENT_KEY)
    if isinstance(view, ClientView):
        return view
    return ClientView(request.remote or "", "https" if request.secure else "http", request.headers.get("Host"))


async def _guarded(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                   state: GatewayState, view: ClientView, request_id: str) -> web.StreamResponse:
    if request.path not in ("/health", "/ready"):
        # Prometheus scrapes by address, so /metrics skips the Host check (it still needs a token or opt-in).
        if request.path != "/metrics" and not state.host_policy.host_allowed(view.host):
            return web.json_response(
                error_body("bad_host", "Host header not allowed (set GIG_PUBLIC_URL or GIG_ALLOWED_HOSTS)"),
                status=421,
            )
        if not state.host_policy.origin_allowed(request.headers.get("Origin")):
            return web.json_response(error_body("bad_origin", "Origin not allowed"), status=403)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            # Keep headers such as Allow (405) and WWW-Authenticate (401) on the JSON form of the error.
            kept = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate", "retry-after")}
            return web.json_response(error_body(exc.reason.lower().replace(" ", "_"), exc.reason), status=exc.status,
                                     headers=kept)
        raise
    except Exception as exc:
        failure = storage_failure(exc)
        if failure is not None:
            return _storage_error(failure, exc, request, request_id)
        log.exception("unhandled error on %s %s (request %s)", request.method, request.path, request_id)
        return web.json_response(error_body("internal", f"internal error (request {request_id})"), status=500)
    if not response.prepared:
        response.headers.setdefault("X-Request-Id", request_id)
    return response


def _principal(request: web.Request) -> Principal | None:
    # Resolved (and re-checked against the database) once per request by the API's identity middleware.
    return principal_of(request)


def _require_admin(request: web.Request) -> Principal:
    principal = _principal(request)
    if principal is None:
        raise web.HTTPUnauthorized(
            text=json.dumps(error_body("unauthorized", "a valid bearer token is required")),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="gigmcp"'},
        )
    if principal.role != "admin" or principal.is_profile_token:
        raise web.HTTPForbidden(text=json.dumps(error_body("forbidden", "admin only")), content_type="application/json")
    return principal


# ---- MCP ----------------------------------------------------------------------------------------
def jsonrpc_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}, status=status)


_SDK_USERS: dict[tuple[str, str], AuthenticatedUser] = {}


def _sdk_user(token_id: str, user: str) -> AuthenticatedUser:
    """The SDK binds a session to this principal: another credential presenting the session id gets 404.

    Remembered per credential: building the pydantic token model on every call showed in the profile.
    """
    key = (token_id, user)
    found = _SDK_USERS.get(key)
    if found is None:
        if len(_SDK_USERS) >= 10_000:
            _SDK_USERS.clear()
        token = AccessToken(token="-", client_id=token_id, scopes=[], subject=user)
        found = _SDK_USERS[key] = AuthenticatedUser(token)
    return found


async def mcp_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    principal = _principal(request)
    if principal is None:
        return unauthorized(state.config.public_url)
    # Someone else's profile answers exactly like a missing one: existence is not revealed.
    profile = await resolve_profile(state.store, principal, request.match_info.get("slug"))
    if profile is None:
        return jsonrpc_error(404, -32600, "no such profile")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return jsonrpc_error(413, -32600, f"request body exceeds {state.config.max_body_bytes} bytes")
    identity = RequestIdentity(principal.user, profile.id, await state.aggregate_for(profile),
                               token_id=principal.token_id, client=client_of(request).address)
    sdk_user = _sdk_user(principal.token_id, principal.user)
    if state.fastpath is not None:
        fast = await state.fastpath.handle(request, body, identity, sdk_user)
        if fast is not None:
            return fast
    return await bridge.serve(
        state.manager.handle_request, request, body, {SCOPE_KEY: identity, "user": sdk_user}
    )


# ---- plain HTTP routes --------------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"status": "ok", "uptime_s": round(time.monotonic() - state.started_at, 1)})


async def ready(request: web.Request) -> web.Response:
    """Readiness: the store answers, the egress proxy runs (when enabled) and sandboxes can be started."""
    state = request.app[STATE]
    checks: dict[str, str] = {}
    try:
        async with state.store.conn.execute("SELECT 1") as cur:
            await cur.fetchone()
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"failed: {type(exc).__name__}"
    if state.networking is not None:
        checks["egress_proxy"] = "ok" if state.networking.proxy.ready else "not running"
    checks["sandbox"] = "ok" if shutil.which("bwrap") else "bwrap not found"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ready" if healthy else "not_ready", "checks": checks},
                             status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.config.metrics_public:
        _require_admin(request)
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def list_sandboxes(request: web.Request) -> web.Response:
    _require_admin(request)
    state = request.app[STATE]
    return web.json_response({"sandboxes": state.supervisor.snapshot(), "spawns": state.supervisor.spawns})


async def stop_sandbox(request: web.Request) -> web.Response:
    _require_admin(request)
    state = request.app[STATE]
    key = (request.match_info["server"], int(request.match_info["profile"]))
    if not await state.supervisor.stop(key, "stopped by an admin"):
        return web.json_response(error_body("not_found", "no such live sandbox"), status=404)
    return web.json_response({"stopped": list(key)})


async def list_egress_audit(request: web.Request) -> web.Response:
    _require_admin(request)
    state = request.app[STATE]
    try:
        limit = min(500, max(1, int(request.query.get("limit", "100"))))
        before = int(request.query["before"]) if "before" in request.query else None
        if before is not None and not 0 <= before < 2**63:
            raise ValueError
    except ValueError:
        return web.json_response(error_body("bad_request", "limit and before must be whole numbers"), status=400)
    rows = await EgressAudit(state.store.conn).page(
        before_id=before, limit=limit, server=request.query.get("server"), decision=request.query.get("decision")
    )
    next_before = rows[-1]["id"] if len(rows) == limit else None
    return web.json_response({"records": rows, "next_before": next_before})


async def list_servers(request: web.Request) -> web.Response:
    _require_admin(request)
    state = request.app[STATE]
    installed = {
        name: {"version": s.version, "runtime_hash": s.runtime_hash} for name, s in sorted(state.installed.items())
    }
    return web.json_response({"installed": installed, "catalog": state.catalog.names()})


# ---- lifecycle ------------------------------------------------------------------------------------
def create_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[guard_middleware])
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_lifecycle(config))
    app.router.add_route("*", "/mcp", mcp_handler)
    app.router.add_route("*", "/mcp/p/{slug}", mcp_handler)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/sandboxes", list_sandboxes)
    app.router.add_delete("/api/sandboxes/{server}/{profile:\\d+}", stop_sandbox)
    app.router.add_get("/api/servers", list_servers)
    app.router.add_get("/api/audit/egress", list_egress_audit)
    setup_api_routes(app)
    setup_web(app)  # dashboard pages, /login and /auth/* (OIDC)
    if config.auth_rate_limit_rps > 0:
        # After the API's identity middleware: a request with a valid credential is not a guess, and its
        # token has its own budget; anonymous and failed attempts and browser logins count per address.
        refused = app[METRICS].rate_limited.labels("address")
        app.middlewares.append(address_limit_middleware(
            RateLimiter(config.auth_rate_limit_rps, config.auth_rate_limit_burst), ADDRESS_LIMITED,
            lambda request: client_of(request).address, lambda _path: refused.inc(),
            exempt=lambda request: request.path.startswith("/api/") and _principal(request) is not None))
    return app


def _use_spool(writer: BatchWriter, config: Config, name: str) -> None:
    """Audit rows are spooled beside the database (`gigmcp.db` -> `gigmcp.spool/`) so a killed gateway loses none."""
    try:
        writer.use_spool(Spool(config.db_path.with_suffix(".spool"), name))
    except OSError as exc:
        log.error("the %s audit spool cannot be opened (%s): rows live in memory until written", name, exc)


def _lifecycle(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(config.db_path)
        try:
            catalog = load_catalog(config)
        except BaseException:
            await store.close()  # its threads would keep the failed process from exiting
            raise
        frontdoor = FrontDoor()
        manager = StreamableHTTPSessionManager(
            frontdoor.server,
            max_request_body_size=config.max_body_bytes,
            session_idle_timeout=max(config.idle_timeout_s, 60.0),
        )
        state_ref: list[GatewayState] = []

        def lookup(name: str) -> InstalledServer | None:
            return state_ref[0].installed.get(name)

        def on_event(key: Hashable, event: str, detail: str) -> None:
            server, profile_id = key if isinstance(key, tuple) else (str(key), None)
            app[METRICS].sandbox_events.labels(str(server), event).inc()
            task = asyncio.ensure_future(store.events.record(str(server), profile_id, event, detail))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

        async def on_notify(server: str, profile_key: Hashable, method: str, params: Any) -> None:
            if method.endswith("/list_changed"):
                kind = method.split("/")[1]
                for _key, backend in state_ref[0].supervisor.live():
                    if backend.server == server:
                        backend.cache.pop(f"{kind}/list", None)
                        if kind == "resources":
                            backend.cache.pop("resources/templates/list", None)
            await frontdoor.backend_notification(server, profile_key, method, params)

        async def resolve_secret(sandbox_id: str, credential_id: str) -> str | None:
            return await factory.resolve_secret(sandbox_id, credential_id)

        # Everything started from here on is stopped in reverse order, also when the start fails halfway.
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            stack.push_async_callback(store.close)
            audit = AuditWriter(EgressAudit(store.conn))
            _use_spool(audit, config, "egress")
            audit.start()
            stack.push_async_callback(audit.close)
            egress_decisions = app[METRICS].egress

            def audit_sink(record: AuditRecord) -> Awaitable[None] | None:
                egress_decisions.labels(record.server or "unknown", record.decision).inc()
                if audit.spooled:
                    audit.record_nowait(record)  # on disk as soon as the proxy's event is read
                    return None
                return audit.submit_record(record)

            networking = None
            if config.egress_enabled:
                networking = SandboxNetworking(
                    EgressSettings(config.egress_subnet, config.proxy_port, config.upstream_ca_file,
                                   dict(config.egress_test_overrides), config.egress_if_prefix),
                    secret_resolver=resolve_secret,
                    audit_sink=audit_sink,
                    workdir=config.data_dir / "egress",
                )
                stack.push_async_callback(networking.stop)
                await networking.start()
            factory = BackendFactory(
                lookup,
                SandboxSettings(
                    config.sandbox_uid, config.sandbox_gid, config.spawn_timeout_s, config.node_runtime_dir,
                    str(config.data_dir / "profiles"),
                ),
                on_notify,
                networking,
            )
            supervisor: Supervisor[LiveBackend] = Supervisor(
                factory, idle_timeout_s=config.idle_timeout_s, max_live=config.max_live_sandboxes, on_event=on_event
            )
            state = GatewayState(
                config=config,
                store=store,
                catalog=catalog,
                auth=Authenticator(config.bearer_token),
                host_policy=HostPolicy.build(config.public_url, config.allowed_hosts, config.allowed_origins),
                frontdoor=frontdoor,
                manager=manager,
                supervisor=supervisor,
                audit=audit,
                networking=networking,
            )
            if config.fast_path:
                state.fastpath = FastPath(frontdoor, manager, answer_timeout_s=config.call_timeout_s)
            state_ref.append(state)
            app[STATE] = state
            limiter = (RateLimiter(config.rate_limit_rps, config.rate_limit_burst)
                       if config.rate_limit_rps > 0 else None)
            frontdoor.call_observer = ToolCallObserver(app[METRICS], limiter)
            app[METRICS].watch(LiveSources(supervisor.snapshot, lambda: supervisor.spawns, lambda: audit.depth))
            # --- users/tokens/consent/vault ---
            # The vault check runs before anything below writes to the database: a wrong key stops here.
            key = await open_vault(store, master_key_from_env())
            state.credentials = Credentials(store, key)
            state.access = Access(store, state.installed)
            factory.consent_check = state.access.check_spawn
            state.upgrades = StagedUpgrades(store, state.installed, supervisor, drain_timeout_s=config.call_timeout_s)
            factory.select_version = state.upgrades.select_version
            factory.credentials = state.credentials
            # --- oauth ---
            state.oauth = OAuthService(store, key, OAuthSettings(config.public_url))
            stack.push_async_callback(state.oauth.close)
            await state.oauth.load_env(vendors_from_env())
            factory.oauth_token = state.oauth.token_for_profile
            await start_web(app, state, stack)  # OIDC login, browser sessions, the tool-call audit
            tool_calls = app[WEB].tool_calls
            if tool_calls is not None:
                _use_spool(tool_calls, config, "tool-calls")
            boot_admin = await store.users.ensure("admin", "admin")
            stack.push_async_callback(supervisor.drain, 10.0)
            admin_profile = await store.profiles.ensure_default(boot_admin)
            for server in await store.servers.active():
                state.installed[server.name] = server
            for name in config.install:
                record = await state.install_server(name, profile=admin_profile,
                                                    config=config.server_config.get(name, {}))
                # Boot installs are the operator's own choice: consented for the admin.
                await store.consents.grant(boot_admin.id, record.name, record.runtime_hash, record.version,
                                           record.manifest_json)
            supervisor.start()
            async with bridge.running(manager):
                # Everything made so far lives as long as the process: out of the collector's sight, a
                # full collection no longer walks ~130k start-up objects (70 ms, a tail-latency spike).
                gc.collect()
                gc.freeze()
                log.info("gigmcp ready on %s:%s (%d servers installed)", config.listen_host, config.listen_port,
                         len(state.installed))
                yield
        finally:
            await stack.aclose()

    return ctx
