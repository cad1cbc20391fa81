"""The HTTP ceiling: a minimal aiohttp app served by the service's own serving function
(app.workers.run_server: the same web.run_app options, event loop, access logger and log
set-up, one process), so the two servers differ only in the app.

It reads a JSON body and answers with a JSON body about the size of a conceal's: the
difference to the service is what the service does between the two.

    .venv/bin/python -m bench.ceiling --port 7200
"""

from __future__ import annotations

import argparse
import os
import secrets
from unittest import mock

from aiohttp import web

from app import crypto, workers
from app.config import DatabaseConfig, Settings
from app.logs import configure


async def echo(request: web.Request) -> web.Response:
    body = await request.json()
    key = secrets.token_hex(25)
    record = {"identifier": key, "key": key, "state": "new", "secret_ttl": 3600}
    return web.json_response(
        {"success": True, "custid": "anon", "record": {"secret": record}, "got": len(body)}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def minimal_app(settings: Settings, *, sweeper: bool = True) -> web.Application:
    app = web.Application()
    app.router.add_post("/api/v2/secret/conceal", echo)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    configure(os.environ.get("OTS_LOG_LEVEL", "INFO"), "text")
    # Only what run_server reads: where to listen and how long to drain. Nothing connects.
    settings = Settings(
        database=DatabaseConfig(url="postgresql://unused/unused"),
        keys=crypto.parse_keyring(crypto.generate_keyring_text()),
        port=args.port,
    )
    # The service's serving function with this app in place of the service's.
    with mock.patch.object(workers, "create_app", minimal_app):
        workers.run_server(settings)


if __name__ == "__main__":
    main()
