"""The MCP front door: Streamable HTTP (both protocol eras) bridged from aiohttp, aggregation, backend sessions."""
