"""Which bwrap set-up failures a spawn retries: only the transient loopback ones, never anything else."""

from __future__ import annotations

from sandbox.process import transient_setup_failure


def test_loopback_netlink_failures_are_transient() -> None:
    assert transient_setup_failure("bwrap: loopback: Failed RTM_NEWADDR: No child processes")
    assert transient_setup_failure("bwrap: loopback: Failed RTM_NEWLINK: Device or resource busy")


def test_other_failures_are_not_retried() -> None:
    for tail in ("", "bwrap: Can't find source path /nope: No such file or directory",
                 "bwrap: No permissions to create new namespace", "sandbox echo: timed out while starting"):
        assert not transient_setup_failure(tail)
