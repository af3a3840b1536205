"""CI routes of the fake: pipelines, jobs, streamed traces, artifacts, variables, environments, deployments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..app import Fail, route
from ..state import T0, _job, _pipeline, _var
from .common import created, no_content, ok, project_id, require, scope

if TYPE_CHECKING:
    from ..app import FakeGitLab, Req

_TRACE_CHUNK = 64 * 1024


def _pipeline_of(fake: FakeGitLab, req: Req) -> tuple[int, dict[str, Any]]:
    pid = project_id(fake, req)
    p = fake.store.pipelines.get(pid, {}).get(int(req.params["pipeline_id"]))
    if p is None:
        raise Fail(404, "404 Not found")
    return pid, p


def _job_of(fake: FakeGitLab, req: Req) -> tuple[int, dict[str, Any]]:
    pid = project_id(fake, req)
    j = fake.store.jobs.get(int(req.params["job_id"]))
    if j is None or j["_project_id"] != pid:
        raise Fail(404, "404 Job Not Found")
    return pid, j


def _brief(p: dict[str, Any]) -> dict[str, Any]:
    return {
        k: p[k]
        for k in (
            "id",
            "iid",
            "project_id",
            "sha",
            "ref",
            "status",
            "source",
            "created_at",
            "updated_at",
            "web_url",
            "name",
        )
    }


@route("GET", "/projects/:project/pipelines")
async def pipelines(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    items = sorted(fake.store.pipelines.get(pid, {}).values(), key=lambda p: -p["id"])
    for key in ("status", "ref", "sha", "source"):
        if req.query.get(key):
            items = [p for p in items if p[key] == req.query[key]]
    return fake.paginate(req, [_brief(p) for p in items])


@route("GET", "/projects/:project/pipelines/latest")
async def pipeline_latest(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    ref = req.query.get("ref") or fake.store.projects[pid]["default_branch"]
    items = [p for p in fake.store.pipelines.get(pid, {}).values() if p["ref"] == ref]
    if not items:
        raise Fail(403, "403 Forbidden")
    return ok(max(items, key=lambda p: p["id"]))


@route("GET", "/projects/:project/pipelines/:pipeline_id")
async def pipeline(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(_pipeline_of(fake, req)[1])


@route("POST", "/projects/:project/pipeline")
async def pipeline_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "ref")
    pid = project_id(fake, req)
    repo = fake.store.repos[pid]
    ref = str(req.arg("ref"))
    commit = repo.resolve(ref)
    if commit is None:
        raise Fail(400, {"base": ["Reference not found"]})
    plid = max(fake.store.pipelines[pid], default=999) + 1
    _pipeline(fake.store, pid, plid, ref, commit.id, "created", [("build", "build", "created")], source="api")
    p = fake.store.pipelines[pid][plid]
    p["_variables"] = [
        {"key": v["key"], "value": v["value"], "variable_type": v.get("variable_type", "env_var")}
        for v in req.body.get("variables") or []
    ]
    return created(p)


@route("POST", "/projects/:project/pipelines/:pipeline_id/retry")
async def pipeline_retry(fake: FakeGitLab, req: Req) -> web.Response:
    _, p = _pipeline_of(fake, req)
    for j in fake.store.jobs.values():
        if j["pipeline"]["id"] == p["id"] and j["status"] in ("failed", "canceled"):
            j["status"] = "pending"
    p["status"] = "running"
    return created(p)


@route("POST", "/projects/:project/pipelines/:pipeline_id/cancel")
async def pipeline_cancel(fake: FakeGitLab, req: Req) -> web.Response:
    _, p = _pipeline_of(fake, req)
    p["status"] = "canceled"
    return created(p)


@route("DELETE", "/projects/:project/pipelines/:pipeline_id")
async def pipeline_delete(fake: FakeGitLab, req: Req) -> web.Response:
    pid, p = _pipeline_of(fake, req)
    del fake.store.pipelines[pid][p["id"]]
    return no_content()


@route("GET", "/projects/:project/pipelines/:pipeline_id/variables")
async def pipeline_variables(fake: FakeGitLab, req: Req) -> web.Response:
    return fake.paginate(req, _pipeline_of(fake, req)[1]["_variables"])


@route("GET", "/projects/:project/pipelines/:pipeline_id/jobs")
async def pipeline_jobs(fake: FakeGitLab, req: Req) -> web.Response:
    _, p = _pipeline_of(fake, req)
    jobs = sorted((j for j in fake.store.jobs.values() if j["pipeline"]["id"] == p["id"]), key=lambda j: -j["id"])
    if req.query.get("include_retried") != "true":
        jobs = [j for j in jobs if not j["retried"]]
    scopes = req.list_arg("scope")
    if scopes:
        jobs = [j for j in jobs if j["status"] in scopes]
    return fake.paginate(req, jobs)


@route("GET", "/projects/:project/pipelines/:pipeline_id/bridges")
async def pipeline_bridges(fake: FakeGitLab, req: Req) -> web.Response:
    _pipeline_of(fake, req)
    return fake.paginate(req, [])


@route("GET", "/projects/:project/pipelines/:pipeline_id/test_report_summary")
async def test_summary(fake: FakeGitLab, req: Req) -> web.Response:
    _pipeline_of(fake, req)
    return ok(
        {
            "total": {
                "time": 812.34,
                "count": 49986,
                "success": 49985,
                "failed": 1,
                "skipped": 0,
                "error": 0,
                "suite_error": None,
            },
            "test_suites": [
                {
                    "name": "pytest",
                    "total_time": 812.34,
                    "total_count": 49986,
                    "success_count": 49985,
                    "failed_count": 1,
                    "skipped_count": 0,
                    "error_count": 0,
                    "build_ids": [5012],
                    "suite_error": None,
                }
            ],
        }
    )


@route("GET", "/projects/:project/pipelines/:pipeline_id/test_report")
async def test_report(fake: FakeGitLab, req: Req) -> web.Response:
    _pipeline_of(fake, req)
    return ok(
        {
            "total_time": 812.34,
            "total_count": 49986,
            "success_count": 49985,
            "failed_count": 1,
            "skipped_count": 0,
            "error_count": 0,
            "test_suites": [],
        }
    )


@route("GET", "/projects/:project/pipeline_schedules")
async def schedules(fake: FakeGitLab, req: Req) -> web.Response:
    project_id(fake, req)
    return fake.paginate(
        req,
        [
            {
                "id": 13,
                "description": "nightly",
                "ref": "refs/heads/main",
                "cron": "0 2 * * *",
                "cron_timezone": "UTC",
                "next_run_at": "2026-03-02T02:00:00.000Z",
                "active": True,
                "created_at": T0,
                "updated_at": T0,
                "owner": {"id": 1, "username": "alice", "name": "Alice Admin", "state": "active"},
            }
        ],
    )


@route("POST", "/projects/:project/pipeline_schedules/:schedule_id/play")
async def schedule_play(fake: FakeGitLab, req: Req) -> web.Response:
    project_id(fake, req)
    return created({"message": "201 Created"})


@route("GET", "/projects/:project/triggers")
async def triggers(fake: FakeGitLab, req: Req) -> web.Response:
    project_id(fake, req)
    return fake.paginate(req, [])


@route("POST", "/projects/:project/ci/lint")
async def ci_lint(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "content")
    content = str(req.arg("content"))
    valid = "script" in content
    return ok(
        {
            "valid": valid,
            "errors": [] if valid else ["jobs config should contain at least one visible job"],
            "warnings": [],
            "merged_yaml": content,
            "includes": [],
        }
    )


@route("GET", "/projects/:project/ci/lint")
async def ci_lint_project(fake: FakeGitLab, req: Req) -> web.Response:
    project_id(fake, req)
    return ok({"valid": True, "errors": [], "warnings": [], "merged_yaml": "test:\n  script: pytest\n", "includes": []})


# ---- jobs --------------------------------------------------------------------------------------------


@route("GET", "/projects/:project/jobs")
async def jobs(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    items = sorted((j for j in fake.store.jobs.values() if j["_project_id"] == pid), key=lambda j: -j["id"])
    scopes = req.list_arg("scope")
    if scopes:
        items = [j for j in items if j["status"] in scopes]
    return fake.paginate(req, items)


@route("GET", "/projects/:project/jobs/:job_id")
async def job(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(_job_of(fake, req)[1])


@route("GET", "/projects/:project/jobs/:job_id/trace")
async def trace(fake: FakeGitLab, req: Req) -> web.StreamResponse:
    _, j = _job_of(fake, req)
    data = fake.store.traces.get(j["id"], b"")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})
    await resp.prepare(req.raw)
    for start in range(0, len(data), _TRACE_CHUNK):
        await resp.write(data[start : start + _TRACE_CHUNK])
    await resp.write_eof()
    return resp


@route("POST", "/projects/:project/jobs/:job_id/retry")
async def job_retry(fake: FakeGitLab, req: Req) -> web.Response:
    pid, j = _job_of(fake, req)
    if j["status"] not in ("failed", "canceled", "success"):
        raise Fail(403, "403 Forbidden  - Job is not retryable")
    pipeline = fake.store.pipelines[pid][j["pipeline"]["id"]]
    new_id = max(fake.store.jobs) + 1
    new = _job(fake.store, pid, new_id, j["name"], j["stage"], "pending", pipeline)
    fake.store.jobs[new_id] = new
    fake.store.traces[new_id] = b""
    j["retried"] = True
    return created(new)


@route("POST", "/projects/:project/jobs/:job_id/cancel")
async def job_cancel(fake: FakeGitLab, req: Req) -> web.Response:
    _, j = _job_of(fake, req)
    j["status"] = "canceled"
    return created(j)


@route("POST", "/projects/:project/jobs/:job_id/play")
async def job_play(fake: FakeGitLab, req: Req) -> web.Response:
    _, j = _job_of(fake, req)
    if j["status"] != "manual":
        raise Fail(400, "400 Bad request - Unplayable Job")
    j["status"] = "pending"
    return ok(j)


@route("POST", "/projects/:project/jobs/:job_id/erase")
async def job_erase(fake: FakeGitLab, req: Req) -> web.Response:
    _, j = _job_of(fake, req)
    fake.store.traces[j["id"]] = b""
    j["artifacts"] = []
    j["erased_at"] = T0
    return created(j)


@route("GET", "/projects/:project/jobs/:job_id/artifacts/*artifact_path")
async def artifact_file(fake: FakeGitLab, req: Req) -> web.Response:
    _, j = _job_of(fake, req)
    data = fake.store.artifacts.get(j["id"], {}).get(req.params["artifact_path"])
    if data is None:
        raise Fail(404, "404 Not found")
    return web.Response(body=data, content_type="application/octet-stream")


@route("GET", "/projects/:project/jobs/artifacts/:ref_name/raw/*artifact_path")
async def artifact_by_ref(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    name = req.query.get("job")
    for j in sorted(fake.store.jobs.values(), key=lambda x: -x["id"]):
        if j["_project_id"] == pid and j["ref"] == req.params["ref_name"] and j["name"] == name:
            data = fake.store.artifacts.get(j["id"], {}).get(req.params["artifact_path"])
            if data is not None:
                return web.Response(body=data, content_type="application/octet-stream")
    raise Fail(404, "404 Not found")


@route("POST", "/projects/:project/jobs/:job_id/artifacts/keep")
async def artifact_keep(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(_job_of(fake, req)[1])


@route("DELETE", "/projects/:project/jobs/:job_id/artifacts")
async def artifact_delete(fake: FakeGitLab, req: Req) -> web.Response:
    _, j = _job_of(fake, req)
    fake.store.artifacts.pop(j["id"], None)
    j["artifacts"] = []
    return no_content()


@route("GET", "/projects/:project/runners")
async def runners(fake: FakeGitLab, req: Req) -> web.Response:
    project_id(fake, req)
    return fake.paginate(
        req,
        [
            {
                "id": 9,
                "description": "docker-runner-1",
                "active": True,
                "paused": False,
                "is_shared": True,
                "runner_type": "instance_type",
                "name": "gitlab-runner",
                "online": True,
                "status": "online",
            }
        ],
    )


# ---- variables ---------------------------------------------------------------------------------------


@route("GET", "/projects/:project/variables")
@route("GET", "/groups/:group/variables")
async def variables(fake: FakeGitLab, req: Req) -> web.Response:
    key = scope(fake, req)
    return fake.paginate(req, list(fake.store.variables.get(key, {}).values()))


@route("GET", "/projects/:project/variables/:key")
@route("GET", "/groups/:group/variables/:key")
async def variable(fake: FakeGitLab, req: Req) -> web.Response:
    v = fake.store.variables.get(scope(fake, req), {}).get(req.params["key"])
    if v is None:
        raise Fail(404, "404 Variable Not Found")
    return ok(v)


@route("POST", "/projects/:project/variables")
@route("POST", "/groups/:group/variables")
async def variable_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "key", "value")
    store = fake.store.variables.setdefault(scope(fake, req), {})
    key = str(req.arg("key"))
    if key in store:
        raise Fail(400, {"key": [f"({key}) has already been taken"]})
    v = _var(key, str(req.arg("value")), masked=bool(req.arg("masked")), protected=bool(req.arg("protected")))
    store[key] = v
    return created(v)


@route("PUT", "/projects/:project/variables/:key")
@route("PUT", "/groups/:group/variables/:key")
async def variable_update(fake: FakeGitLab, req: Req) -> web.Response:
    v = fake.store.variables.get(scope(fake, req), {}).get(req.params["key"])
    if v is None:
        raise Fail(404, "404 Variable Not Found")
    for k in ("value", "protected", "masked", "raw", "environment_scope", "description", "variable_type"):
        if k in req.body:
            v[k] = req.body[k]
    return ok(v)


@route("DELETE", "/projects/:project/variables/:key")
@route("DELETE", "/groups/:group/variables/:key")
async def variable_delete(fake: FakeGitLab, req: Req) -> web.Response:
    if fake.store.variables.get(scope(fake, req), {}).pop(req.params["key"], None) is None:
        raise Fail(404, "404 Variable Not Found")
    return no_content()


# ---- environments and deployments --------------------------------------------------------------------


@route("GET", "/projects/:project/environments")
async def environments(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    return fake.paginate(req, list(fake.store.environments.get(pid, {}).values()))


def _env(fake: FakeGitLab, req: Req) -> tuple[int, dict[str, Any]]:
    pid = project_id(fake, req)
    e = fake.store.environments.get(pid, {}).get(int(req.params["environment_id"]))
    if e is None:
        raise Fail(404, "404 Environment Not Found")
    return pid, e


@route("GET", "/projects/:project/environments/:environment_id")
async def environment(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(_env(fake, req)[1])


@route("POST", "/projects/:project/environments")
async def environment_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "name")
    pid = project_id(fake, req)
    envs = fake.store.environments.setdefault(pid, {})
    if any(e["name"] == req.arg("name") for e in envs.values()):
        raise Fail(400, {"name": ["has already been taken"]})
    eid = fake.store.new_id()
    envs[eid] = {
        "id": eid,
        "name": req.arg("name"),
        "slug": str(req.arg("name")).lower(),
        "external_url": req.arg("external_url"),
        "state": "available",
        "tier": req.arg("tier", "other"),
        "created_at": T0,
        "updated_at": T0,
        "description": req.arg("description"),
    }
    return created(envs[eid])


@route("POST", "/projects/:project/environments/:environment_id/stop")
async def environment_stop(fake: FakeGitLab, req: Req) -> web.Response:
    _, e = _env(fake, req)
    e["state"] = "stopped"
    return ok(e)


@route("DELETE", "/projects/:project/environments/:environment_id")
async def environment_delete(fake: FakeGitLab, req: Req) -> web.Response:
    pid, e = _env(fake, req)
    if e["state"] != "stopped":
        raise Fail(403, "403 Forbidden - environment must be stopped first")
    del fake.store.environments[pid][e["id"]]
    return no_content()


@route("GET", "/projects/:project/deployments")
async def deployments(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    return fake.paginate(req, list(fake.store.deployments.get(pid, {}).values()))


@route("GET", "/projects/:project/deployments/:deployment_id")
async def deployment(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    d = fake.store.deployments.get(pid, {}).get(int(req.params["deployment_id"]))
    if d is None:
        raise Fail(404, "404 Deployment Not Found")
    return ok(d)
