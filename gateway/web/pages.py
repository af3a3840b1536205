"""Dashboard pages. Reads and writes go through the REST API's handlers (`invoke`) or its repositories,
so the dashboard enforces exactly what the API enforces; only page layout lives here.

Every form posts back (works without JavaScript) and answers with a redirect carrying a message.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from gateway.access import declared_tools
from gateway.store.toolcalls import ToolCalls, egress_page
from gateway.web.context import back, form, page, render, require_admin, state_of, viewer, web_of
from gateway.web.heatmap import weeks
from gateway.web.invoke import invoke, message

PAGE_SIZE = 50


def _manifest(state: Any, name: str) -> dict[str, Any]:
    server = state.installed.get(name)
    return dict(json.loads(server.manifest_json)) if server else {}


# ---- overview -------------------------------------------------------------------------------------
@page
async def overview(request: web.Request) -> web.StreamResponse:
    me = viewer(request)
    state = state_of(request)
    calls = ToolCalls(state.store.conn)
    per_day = await calls.per_day(time.time() - 371 * 86400, user=me.user)
    profiles = await state.store.profiles.list_for(me.user_id)
    credentials = await state.store.secrets.list_for(me.user_id)
    consents = await invoke(request, "GET", "/api/consent")
    return render(request, "overview.html", title="Overview", counts={
        "Tool calls (year)": sum(per_day.values()),
        "Apps installed": len(state.installed),
        "Profiles": len(profiles),
        "Credentials": len(credentials),
    }, recent=await calls.page(limit=10, user=me.user), heatmap=weeks(per_day, datetime.now(UTC).date()),
        pending=consents.data.get("pending", []) if consents.ok else [])


# ---- apps -----------------------------------------------------------------------------------------
@page
async def apps(request: web.Request) -> web.StreamResponse:
    viewer(request)
    state = state_of(request)
    listed = await invoke(request, "GET", "/api/consent")
    pending = set(listed.data.get("pending", [])) if listed.ok else set()
    installed = [{"name": n, "version": s.version, "description": _manifest(state, n).get("description", ""),
                  "pending": n in pending} for n, s in sorted(state.installed.items())]
    available = []
    for name in state.catalog.names():
        entry = state.catalog.get(name)
        if entry is not None and name not in state.installed:
            available.append({"name": name, "version": entry.manifest.version,
                              "description": entry.manifest.description})
    return render(request, "apps.html", title="Apps", installed=installed, available=available)


@page
async def app_detail(request: web.Request) -> web.StreamResponse:
    me = viewer(request)
    state = state_of(request)
    name = request.match_info["server"]
    shown = await invoke(request, "GET", "/api/servers/{server}", {"server": name})
    if not shown.ok:
        back("/apps", err=message(shown.data))
    manifest = shown.data["manifest"]
    profiles = await state.store.profiles.list_for(me.user_id)
    slug = request.query.get("profile") or next((p.slug for p in profiles if p.is_default), "")
    profile = next((p for p in profiles if p.slug == slug), None)
    in_profile = bool(profile and name in await state.store.profiles.server_names(profile.id))
    tools: list[dict[str, Any]] = []
    if profile is not None:
        listed = await invoke(request, "GET", "/api/profiles/{slug}/tools", {"slug": profile.slug})
        tools = [t for t in (listed.data or {}).get("tools", []) if t["server"] == name]
    if not tools:
        server = state.installed.get(name)
        tools = [{"server": name, "tool": t, "enabled": on, "source": "default"}
                 for t, on in (declared_tools(server) if server else {}).items()]
    stored = {c["credential_id"] for c in (await invoke(request, "GET", "/api/credentials/{server}",
                                                        {"server": name})).data.get("credentials", [])}
    accounts = await invoke(request, "GET", "/api/oauth/accounts")
    connected = {a["vendor"]: a for a in (accounts.data or {}).get("accounts", [])} if accounts.ok else {}
    return render(request, "app.html", title=name, server=shown.data, manifest=manifest,
                  egress=manifest.get("egress") or [], credentials=manifest.get("credentials") or [],
                  stored=stored, connected=connected, tools=tools, profiles=profiles, profile=profile,
                  in_profile=in_profile, consent=shown.data["consent"])


@page
async def app_tool(request: web.Request) -> web.StreamResponse:
    viewer(request)
    data = await form(request)
    name, tool, slug = request.match_info["server"], request.match_info["tool"], data.get("profile", "")
    here = f"/apps/{name}?profile={slug}"
    if data.get("enabled") == "default":
        result = await invoke(request, "DELETE", "/api/profiles/{slug}/tools/{server}/{tool}",
                              {"slug": slug, "server": name, "tool": tool})
    else:
        result = await invoke(request, "PUT", "/api/profiles/{slug}/tools/{server}/{tool}",
                              {"slug": slug, "server": name, "tool": tool}, {"enabled": data.get("enabled") == "on"})
    if not result.ok:
        back(here, err=message(result.data))
    back(here, ok=f"{tool}: saved")


@page
async def app_profile(request: web.Request) -> web.StreamResponse:
    viewer(request)
    data = await form(request)
    name, slug = request.match_info["server"], data.get("profile", "")
    method = "DELETE" if data.get("action") == "remove" else "PUT"
    result = await invoke(request, method, "/api/profiles/{slug}/servers/{server}", {"slug": slug, "server": name})
    if not result.ok:
        back(f"/apps/{name}?profile={slug}", err=message(result.data))
    back(f"/apps/{name}?profile={slug}", ok=f"{'removed from' if method == 'DELETE' else 'added to'} {slug}")


@page
async def app_secret(request: web.Request) -> web.StreamResponse:
    viewer(request)
    data = await form(request)
    name, credential = request.match_info["server"], request.match_info["credential"]
    if data.get("action") == "delete":
        result = await invoke(request, "DELETE", "/api/credentials/{server}/{credential_id}",
                              {"server": name, "credential_id": credential})
    else:
        result = await invoke(request, "PUT", "/api/credentials/{server}/{credential_id}",
                              {"server": name, "credential_id": credential}, {"value": data.get("value", "")})
    where = "/credentials" if data.get("return_to") == "/credentials" else f"/apps/{name}"
    if not result.ok:
        back(where, err=message(result.data))
    back(where, ok=f"{credential}: {'deleted' if data.get('action') == 'delete' else 'stored'}")


# ---- consent --------------------------------------------------------------------------------------
@page
async def consent_page(request: web.Request) -> web.StreamResponse:
    viewer(request)
    name = request.match_info["server"]
    shown = await invoke(request, "GET", "/api/consent/{server}", {"server": name})
    if not shown.ok:
        back("/apps", err=message(shown.data))
    manifest = shown.data["current"]["manifest"]
    return render(request, "consent.html", title=f"Consent: {name}", view=shown.data, manifest=manifest,
                  diff=shown.data["diff"])


@page
async def consent_decide(request: web.Request) -> web.StreamResponse:
    viewer(request)
    data = await form(request)
    name = request.match_info["server"]
    if data.get("decision") == "approve":
        result = await invoke(request, "POST", "/api/consent/{server}", {"server": name},
                              {"runtime_hash": data.get("runtime_hash", "")})
        if not result.ok:
            back(f"/consent/{name}", err=message(result.data))
        back(f"/apps/{name}", ok=f"You approved {name} {result.data['current']['version']}")
    result = await invoke(request, "DELETE", "/api/consent/{server}", {"server": name})
    back("/apps", ok=f"{name} denied: it will not run for you" if result.ok or result.status == 404 else "",
         err="" if result.ok or result.status == 404 else message(result.data))


# ---- credentials and connected accounts -----------------------------------------------------------
@page
async def credentials(request: web.Request) -> web.StreamResponse:
    me = viewer(request)
    state = state_of(request)
    stored = (await invoke(request, "GET", "/api/credentials")).data.get("credentials", [])
    have = {(c["server"], c["credential_id"]) for c in stored}
    mine: set[str] = set()
    for profile in await state.store.profiles.list_for(me.user_id):
        mine.update(await state.store.profiles.server_names(profile.id))
    declared = [{"server": n, **c, "stored": (n, c.get("id")) in have}
                for n in sorted(mine & set(state.installed))
                for c in _manifest(state, n).get("credentials") or [] if c.get("type") != "oauth2"]
    vendors = await invoke(request, "GET", "/api/oauth/vendors")
    accounts = await invoke(request, "GET", "/api/oauth/accounts")
    return render(request, "credentials.html", title="Credentials", stored=stored, declared=declared,
                  vendors=vendors.data.get("vendors", []) if vendors.ok else [],
                  accounts=accounts.data.get("accounts", []) if accounts.ok else [],
                  oauth_error="" if vendors.ok else message(vendors.data))


@page
async def oauth_connect(request: web.Request) -> web.StreamResponse:
    viewer(request)
    vendor = request.match_info["vendor"]
    result = await invoke(request, "POST", "/api/oauth/{vendor}/connect", {"vendor": vendor})
    if not result.ok or result.response is None:
        back("/credentials", err=message(result.data))
    response = web.Response(status=303, headers={"Location": result.data["authorize_url"]})
    for morsel in result.response.cookies.values():  # the browser binding set by the API handler
        response.cookies[morsel.key] = morsel
    return response


@page
async def oauth_disconnect(request: web.Request) -> web.StreamResponse:
    viewer(request)
    vendor = request.match_info["vendor"]
    result = await invoke(request, "DELETE", "/api/oauth/accounts/{vendor}", {"vendor": vendor})
    if not result.ok:
        back("/credentials", err=message(result.data))
    back("/credentials", ok=f"{vendor} disconnected")


# ---- catalog (admin) ------------------------------------------------------------------------------
@page
async def catalog(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    state = state_of(request)
    entries = []
    for name in state.catalog.names():
        entry = state.catalog.get(name)
        if entry is None:
            continue
        installed = state.installed.get(name)
        entries.append({"name": name, "version": entry.manifest.version, "description": entry.manifest.description,
                        "installed": installed.version if installed else None,
                        "hosts": [e.host for e in entry.manifest.egress]})
    return render(request, "catalog.html", title="Catalog", entries=entries)


@page
async def catalog_install(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    name = request.match_info["server"]
    result = await invoke(request, "POST", "/api/servers/install", body={"name": name})
    if not result.ok:
        back("/catalog", err=message(result.data))
    back(f"/consent/{name}", ok=f"{name} {result.data['version']} installed: review what it may do")


@page
async def catalog_uninstall(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    state = state_of(request)
    name = request.match_info["server"]
    if not await state.uninstall_server(name):
        back("/catalog", err=f"{name} is not installed")
    back("/catalog", ok=f"{name} uninstalled")


# ---- profiles -------------------------------------------------------------------------------------
@page
async def profiles(request: web.Request) -> web.StreamResponse:
    viewer(request)
    listed = await invoke(request, "GET", "/api/profiles")
    return render(request, "profiles.html", title="Profiles", profiles=listed.data["profiles"],
                  servers=sorted(state_of(request).installed))


@page
async def profile_create(request: web.Request) -> web.StreamResponse:
    viewer(request)
    data = await request.post()
    slug = str(data.get("slug", "")).strip()
    created = await invoke(request, "POST", "/api/profiles", body={"slug": slug})
    if not created.ok:
        back("/profiles", err=message(created.data))
    for server in data.getall("servers", []):
        await invoke(request, "PUT", "/api/profiles/{slug}/servers/{server}", {"slug": slug, "server": str(server)})
    return await _profile_with_token(request, slug, f"profile {slug} created")


async def _profile_with_token(request: web.Request, slug: str, note: str) -> web.StreamResponse:
    issued = await invoke(request, "POST", "/api/profiles/{slug}/token", {"slug": slug}, {"name": f"{slug} token"})
    if not issued.ok:
        back(f"/profiles/{slug}", err=message(issued.data))
    return await _profile_page(request, slug, token=issued.data["token"], note=note)


@page
async def profile_detail(request: web.Request) -> web.StreamResponse:
    viewer(request)
    return await _profile_page(request, request.match_info["slug"])


async def _profile_page(request: web.Request, slug: str, token: str = "", note: str = "") -> web.StreamResponse:
    shown = await invoke(request, "GET", "/api/profiles/{slug}", {"slug": slug})
    if not shown.ok:
        back("/profiles", err=message(shown.data))
    profile = shown.data
    shown_token = token or "<TOKEN>"
    claude = (f"claude mcp add --transport http gig-{slug} {profile['url']} "
              f"--header \"Authorization: Bearer {shown_token}\"")
    response = render(request, "profile.html", title=f"Profile {slug}", profile=profile, token=token, note=note,
                      claude=claude, servers=sorted(state_of(request).installed))
    response.headers["Cache-Control"] = "no-store"
    return response


@page
async def profile_action(request: web.Request) -> web.StreamResponse:
    viewer(request)
    slug = request.match_info["slug"]
    data = await request.post()
    action = str(data.get("action", ""))
    here = f"/profiles/{slug}"
    if action == "rotate":
        return await _profile_with_token(request, slug, "new token issued; every older token stopped working")
    if action == "default":
        result = await invoke(request, "PATCH", "/api/profiles/{slug}", {"slug": slug}, {"default": True})
    elif action == "delete":
        result = await invoke(request, "DELETE", "/api/profiles/{slug}", {"slug": slug})
        if result.ok:
            back("/profiles", ok=f"profile {slug} deleted")
    elif action == "servers":
        wanted = {str(s) for s in data.getall("servers", [])}
        shown = await invoke(request, "GET", "/api/profiles/{slug}", {"slug": slug})
        if not shown.ok:
            back("/profiles", err=message(shown.data))
        have = set(shown.data["servers"])
        for server in sorted(wanted - have):
            result = await invoke(request, "PUT", "/api/profiles/{slug}/servers/{server}",
                                  {"slug": slug, "server": server})
            if not result.ok:
                back(here, err=message(result.data))
        for server in sorted(have - wanted):
            await invoke(request, "DELETE", "/api/profiles/{slug}/servers/{server}", {"slug": slug, "server": server})
        back(here, ok="servers saved")
    else:
        back(here, err="unknown action")
    if not result.ok:
        back(here, err=message(result.data))
    back(here, ok="saved")


# ---- sandboxes ------------------------------------------------------------------------------------
@page
async def sandboxes(request: web.Request) -> web.StreamResponse:
    me = viewer(request)
    state = state_of(request)
    own = {p.id: p.slug for p in await state.store.profiles.list_for(me.user_id)}
    rows = []
    for entry in state.supervisor.snapshot():
        key = entry.get("key")
        profile_id = key[1] if isinstance(key, list) and len(key) == 2 else None
        if me.role != "admin" and profile_id not in own:
            continue  # a user sees the sandboxes of their own profiles only
        rows.append({**entry, "server": key[0] if isinstance(key, list) else str(key), "profile_id": profile_id,
                     "profile": own.get(profile_id, str(profile_id)) if isinstance(profile_id, int) else ""})
    return render(request, "sandboxes.html", title="Sandboxes", rows=rows, spawns=state.supervisor.spawns)


@page
async def sandbox_stop(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    data = await form(request)
    try:
        key = (data.get("server", ""), int(data.get("profile", "")))
    except ValueError:
        back("/sandboxes", err="no such sandbox")
    if not await state_of(request).supervisor.stop(key, "stopped by an admin"):
        back("/sandboxes", err="no such live sandbox")
    back("/sandboxes", ok=f"stopped {key[0]} for profile {key[1]}")


# ---- audit ----------------------------------------------------------------------------------------
def _day(value: str, end: bool = False) -> float | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + (86400 if end else 0)


@page
async def audit(request: web.Request) -> web.StreamResponse:
    me = viewer(request)
    state = state_of(request)
    q = request.query
    kind = "egress" if q.get("kind") == "egress" else "tools"
    server = q.get("server", "")[:64]
    decision = q.get("decision", "")[:32]
    user = q.get("user", "")[:64] if me.role == "admin" else me.user
    since, until = _day(q.get("since", "")), _day(q.get("until", ""), end=True)
    before = int(q["before"]) if q.get("before", "").isdigit() and len(q["before"]) < 19 else None
    if kind == "tools":
        rows = await ToolCalls(state.store.conn).page(before_id=before, limit=PAGE_SIZE, user=user or None,
                                                      server=server or None, outcome=decision or None,
                                                      since=since, until=until)
    else:
        profiles: list[str] | None = None
        if me.role != "admin" or user:
            owner = await state.store.users.by_name(user) if user else None
            owner_id = owner.id if owner else (me.user_id if me.role != "admin" else -1)
            profiles = [str(p.id) for p in await state.store.profiles.list_for(owner_id)]
        rows = await egress_page(state.store.conn, before_id=before, limit=PAGE_SIZE, profiles=profiles,
                                 server=server or None, decision=decision or None, since=since, until=until)
    filters = {k: v for k, v in {"kind": kind, "server": server, "decision": decision,
                                 "user": q.get("user", "") if me.role == "admin" else "",
                                 "since": q.get("since", ""), "until": q.get("until", "")}.items() if v}
    next_before = rows[-1]["id"] if len(rows) == PAGE_SIZE else None
    return render(request, "audit.html", title="Audit", kind=kind, rows=rows, filters=filters,
                  next_before=next_before)


# ---- users (admin) and the viewer's own account ---------------------------------------------------
@page
async def users(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    oidc = web_of(request).oidc
    identities = await oidc.identities.all() if oidc else {}
    listed = await invoke(request, "GET", "/api/users")
    by_name = {u.name: u.id for u in await state_of(request).store.users.list()}
    rows = [{**u, "identity": identities.get(by_name.get(u["name"], -1))} for u in listed.data["users"]]
    return render(request, "users.html", title="Users", rows=rows)


@page
async def account(request: web.Request) -> web.StreamResponse:
    me = viewer(request)
    sessions = web_of(request).sessions
    listed = await sessions.repo.list_for(me.user_id, time.time()) if sessions else []
    current = me.token_id
    return render(request, "account.html", title="Account", sessions=listed, current=current)


@page
async def session_revoke(request: web.Request) -> web.StreamResponse:
    me = viewer(request)
    sessions = web_of(request).sessions
    data = await form(request)
    session_id = int(data["session"]) if data.get("session", "").isdigit() else -1
    if sessions is None or not await sessions.repo.revoke(session_id, me.user_id):
        back("/account", err="no such session")
    back("/account", ok="session ended")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/", overview)
    r.add_get("/apps", apps)
    r.add_get("/apps/{server}", app_detail)
    r.add_post("/apps/{server}/tools/{tool}", app_tool)
    r.add_post("/apps/{server}/profiles", app_profile)
    r.add_post("/apps/{server}/credentials/{credential}", app_secret)
    r.add_get("/consent/{server}", consent_page)
    r.add_post("/consent/{server}", consent_decide)
    r.add_get("/credentials", credentials)
    r.add_post("/credentials/oauth/{vendor}/connect", oauth_connect)
    r.add_post("/credentials/oauth/{vendor}/disconnect", oauth_disconnect)
    r.add_get("/catalog", catalog)
    r.add_post("/catalog/{server}/install", catalog_install)
    r.add_post("/catalog/{server}/uninstall", catalog_uninstall)
    r.add_get("/profiles", profiles)
    r.add_post("/profiles", profile_create)
    r.add_get("/profiles/{slug}", profile_detail)
    r.add_post("/profiles/{slug}", profile_action)
    r.add_get("/sandboxes", sandboxes)
    r.add_post("/sandboxes/stop", sandbox_stop)
    r.add_get("/audit", audit)
    r.add_get("/users", users)
    r.add_get("/account", account)
    r.add_post("/account/sessions", session_revoke)
