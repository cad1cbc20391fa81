"""`serve --workers N`: N processes on one port (SO_REUSEPORT), for hosts outside
Kubernetes (there, run one process per pod and scale pods instead)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from types import FrameType

import uvloop
from aiohttp import web

from app.access_log import RouteAccessLogger
from app.config import Settings
from app.logs import configure
from app.server import create_app
from app.store.db import quiet_dead_connection_closes


def run_server(settings: Settings) -> None:
    """One serving process: until SIGTERM/SIGINT, then drain (see commands.serve).

    On uvloop: the profile under load spent half its time in asyncio's pure-Python socket
    writes (every PostgreSQL round trip and every response is one); uvloop does them in C.
    """
    app = create_app(settings)
    app.on_startup.append(_freeze_what_startup_made)
    loop = uvloop.new_event_loop()
    quiet_dead_connection_closes(loop)
    web.run_app(
        app,
        loop=loop,
        host=settings.host,
        port=settings.port,
        access_log_class=RouteAccessLogger,
        shutdown_timeout=settings.shutdown_timeout,
        reuse_port=True,
        print=None,
    )


async def _freeze_what_startup_made(app: web.Application) -> None:
    """What imports and startup made lives as long as the process (about 92,000 objects),
    yet every full collection walked it: 40 to 60 ms each, 8 times in a 15-second bench
    run, and every request in flight waited (bench/FINDINGS.md). Frozen, collections
    leave it out. After the cleanup contexts: the pool and the services are in it too."""
    gc.collect()  # what startup left as garbage goes now, not frozen with the rest
    gc.freeze()


def _worker(settings: Settings) -> None:
    configure(os.environ.get("OTS_LOG_LEVEL", "INFO"), settings.log_format)
    run_server(settings)


def serve_workers(settings: Settings, count: int) -> int:
    """Start the workers, pass SIGTERM/SIGINT on to them, exit 0 once all drained cleanly."""
    context = multiprocessing.get_context("spawn")  # no event loop or pool crosses a fork
    workers = [context.Process(target=_worker, args=(settings,)) for _ in range(count)]
    for worker in workers:
        worker.start()

    def forward(signum: int, frame: FrameType | None) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                worker.terminate()  # SIGTERM: each worker drains its own requests

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    # A worker stopped by SIGTERM before its server was up had nothing in flight to drain.
    clean = (0, -signal.SIGTERM)
    return 0 if all(worker.exitcode in clean for worker in workers) else 1
