"""The HTTP ceiling: a minimal aiohttp app served exactly as `python -m app serve` serves
the service (same web.run_app options, access logger and log set-up, one process).

It reads a JSON body and answers with a JSON body about the size of a conceal's, so
the difference to the service is what the service does between the two.

    .venv/bin/python -m bench.ceiling --port 7200
"""

from __future__ import annotations

import argparse
import os
import secrets

from aiohttp import web

from app.logs import RouteAccessLogger, configure

SHUTDOWN_TIMEOUT = 20.0  # Settings.shutdown_timeout's default


async def echo(request: web.Request) -> web.Response:
    body = await request.json()
    key = secrets.token_hex(25)
    record = {"identifier": key, "key": key, "state": "new", "secret_ttl": 3600}
    return web.json_response(
        {"success": True, "custid": "anon", "record": {"secret": record}, "got": len(body)}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    configure(os.environ.get("OTS_LOG_LEVEL", "INFO"), "text")
    app = web.Application()
    app.router.add_post("/api/v2/secret/conceal", echo)
    app.router.add_get("/healthz", healthz)
    # The options of app.workers.run_server, so both servers differ only in the app.
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log_class=RouteAccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        reuse_port=True,
        print=None,
    )


if __name__ == "__main__":
    main()
