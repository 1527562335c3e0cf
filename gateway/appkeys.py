"""Typed application state keys (aiohttp ``web.AppKey``), shared by the composition root and
the route modules so neither imports the other."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.config import Settings
from gateway.signing import KeyRegistry
from gateway.store.base import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYS = web.AppKey("keys", KeyRegistry)  # the gateway's signing keys (signs answers the app never sees)
# Filled by their modules as they are wired (typed there; Any here to keep this module leaf-level).
SERVICES = web.AppKey("services", dict[str, Any])
