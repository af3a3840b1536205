"""The egress benchmark on its own: the `egress` stage of `bench/run` (see bench/egress.py, bench/runner.py).

    sudo .venv/bin/python bench/bench_egress.py [--quick]

Results go to bench/results/quick/ (a partial run never touches the docs).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.runner import main

if __name__ == "__main__":
    sys.exit(main(["--only", "egress", *sys.argv[1:]]))
