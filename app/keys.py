"""Every piece of application state, behind a typed key."""

from __future__ import annotations

import asyncio

from aiohttp import web

from app.config import Settings
from app.core.context import Services

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
EXPIRY_TASK = web.AppKey("expiry_task", asyncio.Task[None])
NOTIFY_TASK = web.AppKey("notify_task", asyncio.Task[None])
