"""Sandboxes: bubblewrap argv, seccomp, limits, per-sandbox network, and the supervisor of live sandboxes."""
