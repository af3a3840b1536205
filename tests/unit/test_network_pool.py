"""Address pool arithmetic and the rendered nftables ruleset (no kernel involved)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.firewall import FirewallConfig, render_ruleset
from sandbox.network import AddressPool, NetworkError, NetworkManager


def test_pool_addresses_and_fifo_reuse() -> None:
    pool = AddressPool("10.88.0.0/28")
    assert pool.capacity == 4
    slots = [pool.allocate() for _ in range(4)]
    assert [pool.addresses(s) for s in slots] == [
        ("10.88.0.1", "10.88.0.2"),
        ("10.88.0.5", "10.88.0.6"),
        ("10.88.0.9", "10.88.0.10"),
        ("10.88.0.13", "10.88.0.14"),
    ]
    with pytest.raises(NetworkError):
        pool.allocate()
    pool.release(1)
    pool.release(1)  # double release is harmless
    pool.release(0)
    assert pool.in_use == 2
    assert pool.allocate() == 1  # least recently freed first
    assert pool.allocate() == 0


@given(st.lists(st.booleans(), max_size=300))
def test_pool_never_hands_out_a_block_twice(ops: list[bool]) -> None:
    pool = AddressPool("10.88.0.0/26")
    held: list[int] = []
    for take in ops:
        if take and len(held) < pool.capacity:
            s = pool.allocate()
            assert s not in held
            held.append(s)
        elif held:
            pool.release(held.pop(0))
        assert pool.in_use == len(held)
    for s in held:
        host, sb = pool.addresses(s)
        net = ipaddress.ip_network(f"{host}/30", strict=False)
        assert ipaddress.ip_address(sb) in net and net.subnet_of(pool.network)  # type: ignore[arg-type]


@pytest.mark.parametrize("subnet", ["10.88.0.0/31", "fd00::/64", "nonsense"])
def test_pool_rejects_bad_subnets(subnet: str) -> None:
    with pytest.raises(ValueError):
        AddressPool(subnet)


def test_manager_rejects_bad_prefix() -> None:
    with pytest.raises(ValueError):
        NetworkManager(ifname_prefix="gsb-x")


def test_ruleset_rendering() -> None:
    text = render_ruleset(FirewallConfig(proxy_ports=(3128, 3129), subnet="10.88.0.0/16"))
    lines = [line.strip() for line in text.splitlines()]
    # Atomic replace: create-if-missing, delete, define, all in one transaction.
    assert lines[:3] == ["table inet gigmcp", "delete table inet gigmcp", "table inet gigmcp {"]
    assert 'iifname "gsb*" meta nfproto ipv4 ip daddr 10.88.0.0/16 tcp dport { 3128, 3129 } accept' in lines
    assert 'iifname "gsb*" meta l4proto tcp counter reject with tcp reset' in lines
    assert 'iifname "gsb*" counter drop' in lines
    assert 'oifname "gsb*" counter drop' in lines
    # The accept comes first; everything after it from a sandbox interface is refused.
    assert lines.index('iifname "gsb*" counter drop') > lines.index(
        'iifname "gsb*" meta nfproto ipv4 ip daddr 10.88.0.0/16 tcp dport { 3128, 3129 } accept'
    )


@pytest.mark.parametrize(
    "kw",
    [
        {"proxy_ports": ()},
        {"proxy_ports": (0,)},
        {"subnet": "fd00::/64"},
        {"table": "x; flush ruleset"},
        {"ifname_prefix": 'g"*'},
    ],
)
def test_firewall_config_validation(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FirewallConfig(**kw)  # type: ignore[arg-type]
