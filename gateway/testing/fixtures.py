"""pytest plugin: fixtures shared by every test module (``pytest_plugins`` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from gateway.sandbox_env import SandboxEnvironment


# --- sandbox partners (owner: adapters) -----------------------------------------------------------
@pytest_asyncio.fixture
async def sandbox_env(tmp_path: Path) -> AsyncIterator[SandboxEnvironment]:
    """The three sandbox partners on loopback with run-time keys; ``env.settings`` for the gateway."""
    async with SandboxEnvironment(tmp_path / "sandbox", hang_s=5.0) as env:
        yield env
