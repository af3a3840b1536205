"""Profiles: a user's named sets of servers (`/mcp/p/{slug}`), their tool toggles and profile tokens."""

from __future__ import annotations

from aiohttp import web

from gateway.access import declared_tools
from gateway.api.core import SLUG, Call, Reply, Route, conflict, no_content, not_found, ok
from gateway.api.lookup import installed_server, own_profile, profiles_changed, stop_sandboxes
from gateway.api.schema import array, boolean, component, integer, obj, string
from gateway.api.tokens import ISSUED, TOKEN_LABEL, issued_data
from gateway.auth import rotate_profile_token
from gateway.modes import ModePolicy, profile_modes, set_profile_modes
from gateway.store import Profile

PROFILE = component(
    "Profile",
    obj(
        {"id": integer(description="the profile's id, as in sandbox keys"), "slug": SLUG, "default": boolean(),
         "servers": array(string()), "url": string(fmt="uri")},
        ["id", "slug", "default", "servers", "url"],
    ),
)
PROFILE_LIST = component("ProfileList", obj({"profiles": array(PROFILE)}, ["profiles"]))
TOOL_STATE = component(
    "ToolState",
    obj(
        {"server": string(), "tool": string(), "enabled": boolean(),
         "source": string(enum=("toggle", "default"), description="a toggle of this profile, or the manifest")},
        ["server", "tool", "enabled", "source"],
    ),
)
TOOL_LIST = component("ToolList", obj({"tools": array(TOOL_STATE)}, ["tools"]))
NEW_PROFILE = obj({"slug": SLUG, "default": boolean("make it the caller's default profile")}, ["slug"])
PROFILE_PATCH = obj({"default": boolean("true makes this the default profile")}, ["default"])
TOGGLE = obj({"enabled": boolean()}, ["enabled"])
MODES_BODY = obj({"read_only": boolean("hide tools not annotated readOnlyHint"),
                  "safe": boolean("answer calls to mutating tools with a JSON preview instead of running them")},
                 ["read_only", "safe"])
MODES = component("ProfileModes", MODES_BODY)
ROTATE = obj({"name": TOKEN_LABEL}, [])


async def profile_data(call: Call, profile: Profile) -> dict[str, object]:
    servers = await call.state.store.profiles.server_names(profile.id)
    return {
        "id": profile.id,
        "slug": profile.slug,
        "default": profile.is_default,
        "servers": servers,
        "url": f"{call.state.config.public_url}/mcp/p/{profile.slug}",
    }


async def list_profiles(call: Call) -> web.StreamResponse:
    profiles = await call.state.store.profiles.list_for(call.principal.user_id)
    return ok({"profiles": [await profile_data(call, p) for p in profiles]})


async def create_profile(call: Call) -> web.StreamResponse:
    store = call.state.store
    profile = await store.profiles.create(call.principal.user_id, call.body["slug"],
                                          default=bool(call.body.get("default", False)))
    if profile is None:
        conflict(f"the slug {call.body['slug']!r} is taken")
    return ok(await profile_data(call, profile), status=201)


async def get_profile(call: Call) -> web.StreamResponse:
    return ok(await profile_data(call, await own_profile(call, call.path["slug"])))


async def patch_profile(call: Call) -> web.StreamResponse:
    store = call.state.store
    profile = await own_profile(call, call.path["slug"])
    if call.body["default"] and not profile.is_default:
        await store.profiles.set_default(profile.user_id, profile.id)
    elif not call.body["default"] and profile.is_default:
        conflict("a user always has a default profile: make another profile the default instead")
    updated = await store.profiles.by_id(profile.id)
    if updated is None:  # deleted by a concurrent request
        not_found(f"profile {call.path['slug']!r}")
    return ok(await profile_data(call, updated))


async def delete_profile(call: Call) -> web.StreamResponse:
    profile = await own_profile(call, call.path["slug"])
    if profile.is_default:
        conflict("the default profile cannot be deleted: make another profile the default first")
    await stop_sandboxes(call, [profile.id], "profile deleted")
    await call.state.store.profiles.delete(profile.id)
    call.state.aggregates.pop(profile.id, None)
    return no_content()


async def add_server(call: Call) -> web.StreamResponse:
    profile = await own_profile(call, call.path["slug"])
    server = installed_server(call, call.path["server"])
    await call.state.store.profiles.add_server(profile.id, server.name)
    await profiles_changed(call, [profile.id])
    return ok(await profile_data(call, profile))


async def remove_server(call: Call) -> web.StreamResponse:
    profile = await own_profile(call, call.path["slug"])
    if not await call.state.store.profiles.remove_server(profile.id, call.path["server"]):
        not_found("server in this profile")
    await stop_sandboxes(call, [profile.id], "removed from the profile", server=call.path["server"])
    await profiles_changed(call, [profile.id])
    return no_content()


async def list_tools(call: Call) -> web.StreamResponse:
    store = call.state.store
    profile = await own_profile(call, call.path["slug"])
    toggles = await store.tools.for_profile(profile.id)
    tools: dict[tuple[str, str], dict[str, object]] = {}
    for name in await store.profiles.server_names(profile.id):
        server = call.state.installed.get(name)
        for tool, on in (declared_tools(server) if server else {}).items():
            tools[(name, tool)] = {"server": name, "tool": tool, "enabled": on, "source": "default"}
    for (name, tool), on in toggles.items():
        tools[(name, tool)] = {"server": name, "tool": tool, "enabled": on, "source": "toggle"}
    return ok({"tools": [tools[k] for k in sorted(tools)]})


async def set_tool(call: Call) -> web.StreamResponse:
    profile = await own_profile(call, call.path["slug"])
    server, tool = call.path["server"], call.path["tool"]
    if server not in await call.state.store.profiles.server_names(profile.id):
        not_found("server in this profile")
    await call.state.store.tools.set(profile.id, server, tool, call.body["enabled"])
    await profiles_changed(call, [profile.id])
    return ok({"server": server, "tool": tool, "enabled": call.body["enabled"], "source": "toggle"})


async def clear_tool(call: Call) -> web.StreamResponse:
    profile = await own_profile(call, call.path["slug"])
    if not await call.state.store.tools.clear(profile.id, call.path["server"], call.path["tool"]):
        not_found("tool toggle")
    await profiles_changed(call, [profile.id])
    return no_content()


async def get_modes(call: Call) -> web.StreamResponse:
    profile = await own_profile(call, call.path["slug"])
    modes = await profile_modes(call.state.store.conn, profile.id)
    return ok({"read_only": modes.read_only, "safe": modes.safe})


async def put_modes(call: Call) -> web.StreamResponse:
    profile = await own_profile(call, call.path["slug"])
    modes = ModePolicy(bool(call.body["read_only"]), bool(call.body["safe"]))
    await set_profile_modes(call.state.store.conn, profile.id, modes)
    await profiles_changed(call, [profile.id])  # connected clients re-list: the visible tools changed
    return ok({"read_only": modes.read_only, "safe": modes.safe})


async def rotate_token(call: Call) -> web.StreamResponse:
    profile = await own_profile(call, call.path["slug"])
    issued = await rotate_profile_token(call.state.store, profile, call.body.get("name", f"{profile.slug} token"))
    return ok(await issued_data(call.state.store, issued), status=201)


ROUTES = [
    Route("GET", "/api/profiles", "List the caller's profiles", "profiles", list_profiles,
          replies={200: Reply("the profiles", PROFILE_LIST)}),
    Route("POST", "/api/profiles", "Create a profile", "profiles", create_profile, body=NEW_PROFILE,
          replies={201: Reply("the new profile", PROFILE)}),
    Route("GET", "/api/profiles/{slug}", "Show a profile", "profiles", get_profile,
          replies={200: Reply("the profile", PROFILE)}),
    Route("PATCH", "/api/profiles/{slug}", "Make a profile the default", "profiles", patch_profile,
          body=PROFILE_PATCH, replies={200: Reply("the profile", PROFILE)}),
    Route("DELETE", "/api/profiles/{slug}", "Delete a profile (not the default)", "profiles", delete_profile,
          replies={204: Reply("deleted; its sandboxes stopped and its tokens revoked")}),
    Route("PUT", "/api/profiles/{slug}/servers/{server}", "Add an installed server to a profile", "profiles",
          add_server, replies={200: Reply("the profile", PROFILE)}),
    Route("DELETE", "/api/profiles/{slug}/servers/{server}", "Remove a server from a profile", "profiles",
          remove_server, replies={204: Reply("removed; its sandbox for this profile stopped")}),
    Route("GET", "/api/profiles/{slug}/tools", "Declared and toggled tools of a profile", "profiles", list_tools,
          replies={200: Reply("tools and whether each is enabled", TOOL_LIST)}),
    Route("PUT", "/api/profiles/{slug}/tools/{server}/{tool}", "Enable or disable one tool in a profile",
          "profiles", set_tool, body=TOGGLE, replies={200: Reply("the tool's state", TOOL_STATE)}),
    Route("DELETE", "/api/profiles/{slug}/tools/{server}/{tool}", "Drop a toggle (back to the manifest default)",
          "profiles", clear_tool, replies={204: Reply("the toggle is gone")}),
    Route("GET", "/api/profiles/{slug}/modes", "Read-only and safe mode of a profile", "profiles", get_modes,
          replies={200: Reply("the profile's own flags (GIG_READ_ONLY / GIG_SAFE_MODE add to them)", MODES)}),
    Route("PUT", "/api/profiles/{slug}/modes", "Set read-only and safe mode of a profile", "profiles", put_modes,
          body=MODES_BODY, replies={200: Reply("the profile's own flags", MODES)}),
    Route("POST", "/api/profiles/{slug}/token", "Issue a new profile token; every older one stops at once",
          "profiles", rotate_token, body=ROTATE, replies={201: Reply("the new token, shown only here", ISSUED)}),
]
