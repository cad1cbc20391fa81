"""HTTP plumbing both edges (the API and the pages) share: client addresses, request ids,
security headers."""

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
