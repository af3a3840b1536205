"""Pure functions that map backend names to front-door names and back.

Tools and prompts become `<server>_<name>` (server names never contain `_`, so the first `_`
splits). Resource URIs keep their meaning with the server in the scheme: `test://x` from server
`fixture` becomes `fixture+test://x`, itself a valid URI whose scheme is `fixture+test`.
"""

from __future__ import annotations


def join_name(server: str, name: str, *, prefixed: bool = True) -> str:
    return f"{server}_{name}" if prefixed else name


def split_name(public: str) -> tuple[str, str] | None:
    server, sep, name = public.partition("_")
    if not sep or not server or not name:
        return None
    return server, name


def join_uri(server: str, uri: str, *, prefixed: bool = True) -> str:
    return f"{server}+{uri}" if prefixed else uri


def split_uri(public: str) -> tuple[str, str] | None:
    scheme_end = public.find(":")
    plus = public.find("+")
    if plus <= 0 or scheme_end == -1 or plus > scheme_end:
        return None
    return public[:plus], public[plus + 1 :]
