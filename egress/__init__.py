"""Egress: the mitmproxy policy addon, the proxy process and the per-request policy."""
