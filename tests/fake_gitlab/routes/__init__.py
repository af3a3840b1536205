"""Route modules of the fake GitLab; importing this package registers every route."""

from . import ci, core, misc, mrs, repo

__all__ = ["ci", "core", "misc", "mrs", "repo"]
