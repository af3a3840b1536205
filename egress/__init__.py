"""Egress: the mitmproxy policy addon, the proxy process and the per-request policy.

The gateway uses only what is exported here; none of it imports mitmproxy (that happens in the
proxy process: `egress.proxy_process`, `egress.proxy_control`, `egress.addon`).
"""

from egress.audit import AuditRecord
from egress.policy import (
    CredentialInjection,
    Decision,
    EgressRule,
    SandboxPolicy,
    check_address,
    decide_connect,
    decide_request,
    new_placeholder,
)
from egress.supervisor import EgressSupervisor, ProxyRefused, ProxyUnavailable

__all__ = [
    "AuditRecord",
    "CredentialInjection",
    "Decision",
    "EgressRule",
    "EgressSupervisor",
    "ProxyRefused",
    "ProxyUnavailable",
    "SandboxPolicy",
    "check_address",
    "decide_connect",
    "decide_request",
    "new_placeholder",
]
