"""gigmcp-fetch: fetch a URL through whatever network the sandbox allows (used by egress tests)."""
