"""pytest plugin (tests/conftest.py): a gateway app on loopback over the sandbox environment."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.sandbox_env import SandboxEnvironment


@pytest.fixture
async def gateway_on_loopback(sandbox_env: SandboxEnvironment) -> AsyncIterator[SandboxEnvironment]:
    """``create_app(env.settings)`` serving at ``env.gateway_url``, for clients run as processes."""
    assert sandbox_env.settings is not None
    runner = web.AppRunner(create_app(sandbox_env.settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sandbox_env.gateway_port).start()
    yield sandbox_env
    await runner.cleanup()
