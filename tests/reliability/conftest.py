"""The reliability tests load the service far past the default rate limits on purpose."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from app.config import DEFAULT_RATE_LIMITS, RateLimits, Settings
from app.server import create_app
from tests.conftest import make_settings

UNLIMITED = RateLimits(per_event=tuple((event, 10**9) for event, _ in DEFAULT_RATE_LIMITS))


@pytest.fixture
async def client(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> TestClient[web.Request, web.Application]:
    loaded = make_settings(settings, rate_limits=UNLIMITED)
    return await aiohttp_client(create_app(loaded))
