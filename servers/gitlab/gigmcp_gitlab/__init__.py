"""gigmcp-gitlab: a GitLab MCP server for gitlab.com and self-managed instances."""

__version__ = "0.1.0"
