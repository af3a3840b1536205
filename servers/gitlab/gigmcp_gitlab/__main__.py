"""`python -m gigmcp_gitlab` runs the stdio server."""

from .cli import main

main()
