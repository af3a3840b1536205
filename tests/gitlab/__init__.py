"""Tests of the GitLab MCP server (servers/gitlab) against the fake GitLab."""
