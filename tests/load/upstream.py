"""The soak test's egress target: a loopback HTTPS echo in a process of its own.

It runs apart from the load generator so that 200 clients competing for one interpreter do not slow
the upstream down (egress latency would then measure the test, not the gateway). Each answer carries
the SHA-256 of the `Authorization` header it received, so the client can check, end to end, that the
proxy injected the secret of the right user without the secret itself ever reaching the sandbox; the
raw header is echoed too, which the proxy must scrub back to the placeholder.

`python -m tests.load.upstream --cert C --key K` prints one JSON line with its ports, then serves
until its stdin closes (the test's end, or the test process dying) or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import signal
import ssl
import sys

from aiohttp import web


class Counters:
    def __init__(self) -> None:
        self.requests = 0
        self.by_path: dict[str, int] = {}


def https_app(counters: Counters) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        counters.requests += 1
        first = request.path.split("/")[1] if request.path.count("/") > 1 else request.path
        counters.by_path[first] = counters.by_path.get(first, 0) + 1
        auth = request.headers.get("Authorization", "")
        return web.json_response({
            "path": request.path_qs,
            "method": request.method,
            "auth_sha256": hashlib.sha256(auth.encode()).hexdigest(),
            "auth": auth,
        })

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def stats_app(counters: Counters) -> web.Application:
    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"requests": counters.requests, "by_path": counters.by_path})

    app = web.Application()
    app.router.add_get("/stats", stats)
    return app


async def serve(cert: str, key: str) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    counters = Counters()
    runners = []
    ports = []
    for app, tls in ((https_app(counters), ctx), (stats_app(counters), None)):
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        ports.append(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        runners.append(runner)
    print(json.dumps({"https_port": ports[0], "stats_port": ports[1]}), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # stdin closing means the test that started us is gone: never outlive it.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.ensure_future(reader.read())
    await asyncio.wait([eof, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    for runner in runners:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.cert, args.key))


if __name__ == "__main__":
    main()
