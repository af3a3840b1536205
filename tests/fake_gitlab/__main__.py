"""Run the fake GitLab: `python -m tests.fake_gitlab --port 8929` (token: glpat-test-token)."""

from __future__ import annotations

import argparse

from aiohttp import web

from .app import FakeGitLab


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake GitLab REST API for tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8929)
    parser.add_argument("--token", action="append", help="Accepted token (repeatable); default glpat-test-token")
    parser.add_argument("--no-auth", action="store_true", help="Accept requests without a token")
    args = parser.parse_args()
    fake = FakeGitLab(tokens=set(args.token) if args.token else None)
    fake.require_auth = not args.no_auth
    fake.base_url = f"http://{args.host}:{args.port}"
    print(f"fake GitLab on {fake.base_url}/api/v4", flush=True)
    web.run_app(fake.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
