"""gigmcp gateway: the aiohttp application, config, auth, the MCP front door, store and registry."""
