"""Egress policy decisions: host patterns, ports, methods, paths, addresses, limits, JSON form."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress import policy as p
from egress.policy import (
    CredentialInjection,
    Decision,
    EgressRule,
    SandboxPolicy,
    TokenBucket,
    check_address,
    decide_connect,
    decide_request,
    new_placeholder,
    policy_from_dict,
    policy_to_dict,
)


def pol(*rules: EgressRule, **kw: object) -> SandboxPolicy:
    return SandboxPolicy("sb", "srv", "prof", "user", rules=rules, **kw)  # type: ignore[arg-type]


GITLAB = pol(
    EgressRule("gitlab.example.com", ports=(443,), methods=("GET", "post"), path_prefixes=("/api/v4/",)),
    EgressRule("gitlab.example.com", ports=(443,), methods=("GET",), path_prefixes=("/-/health",)),
    EgressRule("*.cdn.example.com", ports=(443, 8443)),
    EgressRule("203.0.113.7", ports=(443,)),
    EgressRule("2001:db8::7", ports=(443,)),
)


# --- rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["*", "*.com", "a.*.com", "**.example.com", "", "exa mple.com", "-bad.com", "bad-.com", "a..b", "*."],
)
def test_bad_host_patterns_rejected(host: str) -> None:
    with pytest.raises(ValueError):
        EgressRule(host)


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"ports": ()}, "ports"),
        ({"ports": (0,)}, "ports"),
        ({"ports": (65536,)}, "ports"),
        ({"methods": ("GET POST",)}, "method"),
        ({"path_prefixes": ("api/",)}, "path"),
    ],
)
def test_bad_rule_fields_rejected(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        EgressRule("example.com", **kw)  # type: ignore[arg-type]


def test_rule_normalizes() -> None:
    r = EgressRule("GitLab.Example.COM.", methods=("get",))
    assert r.host == "gitlab.example.com" and r.methods == ("GET",)
    assert EgressRule("[2001:DB8::0007]").host == "2001:db8::7"


# --- connect ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("gitlab.example.com", 443, Decision(True, "allowed")),
        ("GITLAB.example.com.", 443, Decision(True, "allowed")),
        ("gitlab.example.com", 80, Decision(False, "port_not_allowed")),
        ("evil.example.com", 443, Decision(False, "host_not_allowed")),
        ("example.com", 443, Decision(False, "host_not_allowed")),
        ("gitlab.example.com.evil.test", 443, Decision(False, "host_not_allowed")),
        ("a.cdn.example.com", 8443, Decision(True, "allowed")),
        ("cdn.example.com", 443, Decision(False, "host_not_allowed")),  # wildcard needs one label
        ("a.b.cdn.example.com", 443, Decision(False, "host_not_allowed")),  # and only one
        ("xcdn.example.com", 443, Decision(False, "host_not_allowed")),
        ("127.0.0.1", 443, Decision(False, "ip_literal")),
        ("[::1]", 443, Decision(False, "ip_literal")),
        ("203.0.113.7", 443, Decision(True, "allowed")),  # a rule names this literal
        ("[2001:db8:0::7]", 443, Decision(True, "allowed")),
        ("203.0.113.7", 80, Decision(False, "port_not_allowed")),
        ("", 443, Decision(False, "host_not_allowed")),
    ],
)
def test_decide_connect(host: str, port: int, expected: Decision) -> None:
    assert decide_connect(GITLAB, host, port) == expected


def test_empty_policy_allows_nothing() -> None:
    assert decide_connect(pol(), "example.com", 443) == Decision(False, "host_not_allowed")


@given(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True), st.integers(1, 65535))
def test_connect_never_allows_unlisted_hosts(host: str, port: int) -> None:
    d = decide_connect(GITLAB, host, port)
    listed = host == "gitlab.example.com" or (host.endswith(".cdn.example.com") and host.count(".") == 3)
    if not listed:
        assert not d.allowed
    assert d.reason in {"allowed", "host_not_allowed", "port_not_allowed", "ip_literal"}


@given(st.ip_addresses())
def test_ip_literals_refused_unless_named(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    d = decide_connect(GITLAB, str(ip), 443)
    named = str(ip) in ("203.0.113.7", "2001:db8::7")
    assert d.allowed == named
    if not named:
        assert d.reason == "ip_literal"


# --- requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "reason"),
    [
        ("GET", "/api/v4/projects", "allowed"),
        ("post", "/api/v4/projects?x=1", "allowed"),
        ("GET", "/-/health", "allowed"),
        ("GET", "/-/health/deep", "allowed"),
        ("GET", "/-/healthz", "path_not_allowed"),  # segment boundary for prefixes without "/"
        ("POST", "/-/health", "path_not_allowed"),  # the rule allowing POST has no such path
        ("DELETE", "/api/v4/projects", "method_not_allowed"),
        ("GET", "/api/v3/projects", "path_not_allowed"),
        ("GET", "/api/v4", "path_not_allowed"),
        ("GET", "/api/v4/../../admin", "path_not_allowed"),
        ("GET", "/api/v4/%2e%2e/admin", "path_not_allowed"),
        ("GET", "/api/v4/%2E%2e/admin", "path_not_allowed"),
        ("GET", "/api/v4/.%2e/admin", "path_not_allowed"),
        ("GET", "/api/v4/./projects", "path_not_allowed"),
        ("GET", "/api/v4/projects/acme%2Fapi", "allowed"),  # GitLab's encoded project paths
        ("GET", "/api/v4/x%2f..%2fadmin", "path_not_allowed"),  # encoded slashes forming a dot segment
        ("GET", "/api/v4/..%2F..%2Fadmin", "path_not_allowed"),
        ("GET", "/api/v4/x%5Cy", "path_not_allowed"),
        ("GET", "/api/v4/x\\..\\y", "path_not_allowed"),
        ("GET", "/api/v4/x%00", "path_not_allowed"),
        ("GET", "*", "path_not_allowed"),
        ("GET", "/api/v4/projects#frag", "allowed"),
        ("GET", "/api/v4/a..b", "allowed"),  # dots inside a segment are fine
    ],
)
def test_decide_request(method: str, path: str, reason: str) -> None:
    d = decide_request(GITLAB, method, "gitlab.example.com", 443, path)
    assert d == Decision(reason == "allowed", reason)


def test_request_host_and_port_reasons() -> None:
    assert decide_request(GITLAB, "GET", "evil.test", 443, "/").reason == "host_not_allowed"
    assert decide_request(GITLAB, "GET", "gitlab.example.com", 80, "/api/v4/").reason == "port_not_allowed"
    assert decide_request(GITLAB, "GET", "10.0.0.1", 443, "/").reason == "ip_literal"
    # No method or path restriction: anything goes.
    assert decide_request(GITLAB, "PATCH", "x.cdn.example.com", 8443, "/a/../b").allowed


@given(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), st.text(max_size=40))
def test_request_allowed_implies_connect_allowed(method: str, path: str) -> None:
    for host in ("gitlab.example.com", "a.cdn.example.com", "evil.test"):
        if decide_request(GITLAB, method, host, 443, "/" + path).allowed:
            assert decide_connect(GITLAB, host, 443).allowed


@given(st.text(alphabet="/.%2eE5cC0aAb", max_size=30))
def test_allowed_paths_never_contain_dot_segments(path: str) -> None:
    import urllib.parse

    full = "/api/v4/" + path
    if decide_request(GITLAB, "GET", "gitlab.example.com", 443, full).allowed:
        segments = urllib.parse.unquote(p.split_path(full)).split("/")
        assert ".." not in segments and "." not in segments


# --- addresses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("127.5.5.5", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link_local"),
        ("fe80::1", "link_local"),
        ("100.64.0.1", "cgnat"),
        ("100.127.255.254", "cgnat"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("fd12:3456::1", "ula"),
        ("fc00::1", "ula"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("2002:0a00:0001::1", "private"),  # 6to4 of 10.0.0.1
        ("192.0.2.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("240.0.0.1", "reserved"),
        ("not-an-ip", "invalid"),
    ],
)
def test_check_address(ip: str, kind: str | None) -> None:
    d = check_address(ip)
    if kind is None:
        assert d == Decision(True, "allowed")
    else:
        assert d == Decision(False, f"address_not_allowed:{kind}")


def test_loopback_only_with_test_flag() -> None:
    assert check_address("127.0.0.1", allow_loopback=True).allowed
    assert check_address("::1", allow_loopback=True).allowed
    assert not check_address("10.0.0.1", allow_loopback=True).allowed
    assert not check_address("169.254.169.254", allow_loopback=True).allowed


@given(st.ip_addresses(v=4))
def test_v4_refused_iff_not_global(ip: ipaddress.IPv4Address) -> None:
    assert check_address(str(ip)).allowed == (ip.is_global and not ip.is_multicast)


@given(st.ip_addresses(v=4))
def test_mapped_v6_decides_like_v4(ip: ipaddress.IPv4Address) -> None:
    assert check_address(f"::ffff:{ip}").allowed == check_address(str(ip)).allowed


# --- credentials, limits, JSON -------------------------------------------------------------------------


def test_credential_validation_and_render() -> None:
    ph = new_placeholder("gitlab token")
    assert ph.startswith("gigph_gitlabtoken_") and len(ph) > 40
    c = CredentialInjection("gl", ("GitLab.example.com",), ph, header="PRIVATE-TOKEN")
    assert c.hosts == ("gitlab.example.com",) and c.applies_to("gitlab.example.com")
    assert not c.applies_to("evil.test")
    f = CredentialInjection("f", ("*.example.com",), ph, format="token {secret} {other} {secret.__class__}")
    assert f.render("S") == "token S {other} {secret.__class__}"  # no str.format surprises
    assert f.applies_to("a.example.com") and not f.applies_to("example.com")
    with pytest.raises(ValueError, match="placeholder"):
        CredentialInjection("x", ("a.com",), "short")
    with pytest.raises(ValueError, match="format"):
        CredentialInjection("x", ("a.com",), ph, format="Bearer")
    with pytest.raises(ValueError, match="hosts"):
        CredentialInjection("x", (), ph)
    assert new_placeholder("x") != new_placeholder("x")


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        pol(max_connections=0)
    with pytest.raises(ValueError):
        pol(max_rps=0)
    with pytest.raises(ValueError, match="not an IP"):
        pol(address_overrides={"a.test": "b.test"})
    assert pol(address_overrides={"A.Test.": "127.0.0.1"}).address_overrides == {"a.test": "127.0.0.1"}


def test_token_bucket() -> None:
    b = TokenBucket(rate=2.0)
    assert [b.take(0.0), b.take(0.0), b.take(0.0)] == [True, True, False]
    assert b.take(0.5) and not b.take(0.5)
    assert b.take(10.0) and b.take(10.0) and not b.take(10.0)  # burst capped at one second's worth
    slow = TokenBucket(rate=0.5)
    assert slow.take(0) and not slow.take(1.0) and slow.take(2.0)


def test_policy_json_round_trip() -> None:
    ph = new_placeholder("gl")
    original = SandboxPolicy(
        "sb",
        "gitlab",
        "work",
        "alice",
        rules=GITLAB.rules,
        credentials=(CredentialInjection("gl", ("gitlab.example.com",), ph, header="PRIVATE-TOKEN"),),
        allow_loopback=True,
        max_connections=7,
        max_rps=3.5,
        address_overrides={"gitlab.example.com": "203.0.113.9"},
    )
    import json

    again = policy_from_dict(json.loads(json.dumps(policy_to_dict(original))))
    assert again == original
    with pytest.raises((KeyError, ValueError, TypeError)):
        policy_from_dict({"sandbox_id": "x"})
