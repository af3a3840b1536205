"""gigmcp-echo: a small stdio MCP server used for demos and for testing the gateway end to end."""
