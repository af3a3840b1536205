"""The few actions that need more than one request or special rendering; importing registers them."""

from . import ci, misc, repo, review

__all__ = ["ci", "misc", "repo", "review"]
