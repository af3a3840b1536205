"""`python -m gateway` runs the `gigmcp` command."""

import sys

from gateway.cli import main

sys.exit(main())
