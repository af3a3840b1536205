"""Environments and deployments."""

from __future__ import annotations

from .dsl import PROJECT, SORT, delete, e, get, i, lst, post, put, s

D = "environments"
_E = "/projects/{project}/environments"
_ENV = i("environment_id", "Environment id", True)
_DEP = "/projects/{project}/deployments"
_TIERS = ("production", "staging", "testing", "development", "other")

ACTIONS = (
    lst(
        "environment_list",
        D,
        "List environments",
        _E,
        PROJECT,
        s("name", "Exact name"),
        s("search", "Search"),
        e("states", "State", ("available", "stopping", "stopped")),
        columns=("id", "name", "state", "tier", "external_url"),
        aliases=("envs", "deploy targets"),
    ),
    get(
        "environment_get",
        D,
        "Get an environment with its last deployment",
        _E + "/{environment_id}",
        PROJECT,
        _ENV,
    ),
    post(
        "environment_create",
        D,
        "Create an environment",
        _E,
        PROJECT,
        s("name", "Name", True),
        s("external_url", "URL"),
        e("tier", "Tier", _TIERS),
        s("description", "Description"),
    ),
    put(
        "environment_update",
        D,
        "Update an environment",
        _E + "/{environment_id}",
        PROJECT,
        _ENV,
        s("external_url", "URL"),
        e("tier", "Tier", _TIERS),
        s("description", "Description"),
    ),
    post(
        "environment_stop",
        D,
        "Stop an environment (runs its on_stop job)",
        _E + "/{environment_id}/stop",
        PROJECT,
        _ENV,
        idempotent=True,
    ),
    delete("environment_delete", D, "Delete a stopped environment", _E + "/{environment_id}", PROJECT, _ENV),
    lst(
        "deployment_list",
        D,
        "List deployments",
        _DEP,
        PROJECT,
        s("environment", "Environment name"),
        e("status", "Status", ("created", "running", "success", "failed", "canceled", "blocked")),
        e("order_by", "Order field", ("id", "iid", "created_at", "updated_at", "finished_at", "ref")),
        SORT,
        columns=("id", "iid", "ref", "sha", "status", "environment", "created_at"),
        aliases=("releases deployed",),
    ),
    get(
        "deployment_get",
        D,
        "Get one deployment",
        _DEP + "/{deployment_id}",
        PROJECT,
        i("deployment_id", "Deployment id", True),
    ),
    post(
        "deployment_approve",
        D,
        "Approve or reject a blocked deployment (Premium)",
        _DEP + "/{deployment_id}/approval",
        PROJECT,
        i("deployment_id", "Deployment id", True),
        e("status", "Decision", ("approved", "rejected"), True),
        s("comment", "Comment"),
        tier="premium",
    ),
)
