"""CI/CD variables of projects and groups. Values are masked unless `reveal: true`."""

from __future__ import annotations

from .dsl import GROUP_OPT, PROJECT_OPT, b, delete, e, get, lst, post, put, s

D = "variables"
_SCOPE = ("/projects/{project}/variables", "/groups/{group}/variables")
_ONE = ("/projects/{project}/variables/{key}", "/groups/{group}/variables/{key}")
_KEY = s("key", "Variable name", True)
_REVEAL = b("reveal", "Show values in clear text (default: masked)", where="none")
_COLS = ("key", "value", "variable_type", "environment_scope", "protected", "masked", "hidden")
_TYPE = e("variable_type", "Type", ("env_var", "file"))
_OPTS = (
    _TYPE,
    b("protected", "Only on protected refs"),
    b("masked", "Mask in job logs"),
    b("raw", "Do not expand $references"),
    s("environment_scope", "Environment scope (default *)"),
    s("description", "Description"),
)

ACTIONS = (
    lst(
        "variable_list",
        D,
        "List CI/CD variables of a project or group (values masked)",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        _REVEAL,
        handler="variables",
        columns=_COLS,
        aliases=("secrets", "env vars"),
    ),
    get(
        "variable_get",
        D,
        "Get one CI/CD variable (value masked unless reveal)",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        _KEY,
        _REVEAL,
        s("environment_scope", "Environment scope filter", api="filter[environment_scope]"),
        handler="variables",
    ),
    post(
        "variable_create",
        D,
        "Create a CI/CD variable",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        _KEY,
        s("value", "Value", True),
        *_OPTS,
        handler="variables",
    ),
    put(
        "variable_update",
        D,
        "Update a CI/CD variable",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        _KEY,
        s("value", "New value", True),
        *_OPTS,
        handler="variables",
    ),
    delete(
        "variable_delete",
        D,
        "Delete a CI/CD variable",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        _KEY,
        s("environment_scope", "Environment scope filter", api="filter[environment_scope]"),
    ),
)
