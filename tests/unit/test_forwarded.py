"""GIG_TRUST_PROXY: which forwarded headers are believed, for every setting (pure function, no server)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.forwarded import MAX_HOPS, TRUST_NONE, client_view, parse_trust_proxy


def headers(**values: str) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict(Host="gw.internal:8080")
    for key, value in values.items():
        out.add(key.replace("_", "-"), value)
    return out


FORWARDED = headers(X_Forwarded_For="203.0.113.7", X_Forwarded_Proto="https", X_Forwarded_Host="mcp.example.com")


def test_off_ignores_every_forwarded_header() -> None:
    view = client_view("127.0.0.1", FORWARDED, TRUST_NONE)
    assert (view.address, view.scheme, view.host, view.hops) == ("127.0.0.1", "http", "gw.internal:8080", 0)
    assert client_view("127.0.0.1", FORWARDED, parse_trust_proxy("false")).address == "127.0.0.1"


def test_one_hop_believes_the_proxy_in_front() -> None:
    view = client_view("127.0.0.1", FORWARDED, parse_trust_proxy("1"))
    assert (view.address, view.scheme, view.host, view.hops) == ("203.0.113.7", "https", "mcp.example.com", 1)


def test_a_spoofed_prefix_is_not_believed_with_a_hop_count() -> None:
    # The client wrote "1.1.1.1" itself; the one trusted proxy appended the address it saw.
    spoofed = headers(X_Forwarded_For="1.1.1.1, 198.51.100.9")
    assert client_view("10.0.0.2", spoofed, parse_trust_proxy("1")).address == "198.51.100.9"
    assert client_view("10.0.0.2", spoofed, parse_trust_proxy("2")).address == "1.1.1.1"
    assert client_view("10.0.0.2", spoofed, parse_trust_proxy("true")).address == "1.1.1.1"


def test_cidr_list_walks_while_hops_are_trusted() -> None:
    trust = parse_trust_proxy("10.0.0.0/8, 192.0.2.1")
    chain = headers(X_Forwarded_For="1.1.1.1, 198.51.100.9, 192.0.2.1, 10.1.2.3")
    view = client_view("10.0.0.2", chain, trust)
    assert (view.address, view.hops) == ("198.51.100.9", 3)
    # A peer outside the list: nothing forwarded is believed.
    assert client_view("203.0.113.1", chain, trust).address == "203.0.113.1"
    assert client_view("203.0.113.1", FORWARDED, trust).scheme == "http"


def test_several_header_lines_count_as_one_list() -> None:
    many = headers(X_Forwarded_For="1.1.1.1")
    many.add("X-Forwarded-For", "198.51.100.9")
    assert client_view("127.0.0.1", many, parse_trust_proxy("1")).address == "198.51.100.9"


def test_garbage_stops_the_walk_at_the_last_vouched_address() -> None:
    bad = headers(X_Forwarded_For="not-an-ip, 198.51.100.9")
    assert client_view("127.0.0.1", bad, parse_trust_proxy("true")).address == "198.51.100.9"
    assert client_view("127.0.0.1", headers(X_Forwarded_For="<script>"), parse_trust_proxy("1")).address == "127.0.0.1"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert client_view("::ffff:127.0.0.1", headers(X_Forwarded_For="[2001:db8::1]:4711"),
                       parse_trust_proxy("127.0.0.1")).address == "2001:db8::1"
    assert client_view("127.0.0.1", headers(X_Forwarded_For="198.51.100.9:4711"),
                       parse_trust_proxy("1")).address == "198.51.100.9"


def test_proto_and_host_need_a_trusted_peer_and_sane_values() -> None:
    only_proto = headers(X_Forwarded_Proto="https")
    assert client_view("127.0.0.1", only_proto, parse_trust_proxy("1")).scheme == "https"
    odd = headers(X_Forwarded_Proto="gopher", X_Forwarded_Host="evil host/../x")
    view = client_view("127.0.0.1", odd, parse_trust_proxy("1"))
    assert (view.scheme, view.host) == ("http", "gw.internal:8080")
    assert client_view("127.0.0.1", only_proto, parse_trust_proxy("1"), scheme="https").scheme == "https"


def test_no_peer_address() -> None:
    assert client_view(None, FORWARDED, parse_trust_proxy("true")).address == ""


@pytest.mark.parametrize("raw", ["maybe", "10.0.0.0/33", "1.2.3.4, nope", str(MAX_HOPS + 1)])
def test_bad_settings_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_trust_proxy(raw)


def test_settings_parse() -> None:
    assert not parse_trust_proxy("").enabled
    assert not parse_trust_proxy("0").enabled
    assert parse_trust_proxy("true").hops == MAX_HOPS
    assert parse_trust_proxy("3").hops == 3
    assert len(parse_trust_proxy("10.0.0.0/8,::1").networks) == 2


def test_config_names_the_variable() -> None:
    from gateway.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"^GIG_TRUST_PROXY: "):
        load_config({"GIG_BEARER_TOKEN": "x" * 20, "GIG_TRUST_PROXY": "sometimes", "GIG_DATA_DIR": "/tmp/gig-cfg"})
