"""pytest plugin: fixtures shared by every test module (``pytest_plugins`` in tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from gateway.sandbox_env import SandboxEnvironment

if TYPE_CHECKING:
    from gateway.testing.redis import StoreCase


# --- sandbox partners (owner: adapters) -----------------------------------------------------------
@pytest_asyncio.fixture
async def sandbox_env(tmp_path: Path) -> AsyncIterator[SandboxEnvironment]:
    """The three sandbox partners on loopback with run-time keys; ``env.settings`` for the gateway."""
    async with SandboxEnvironment(tmp_path / "sandbox", hang_s=5.0) as env:
        yield env


# --- state store (owner: store) ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server for the session (or ``QRGW_TEST_REDIS_URL``); tests isolate by key prefix."""
    from gateway.testing.redis import redis_server

    if url := os.environ.get("QRGW_TEST_REDIS_URL"):
        yield url
        return
    with redis_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A local three-master Redis Cluster for the session (or ``QRGW_TEST_REDIS_CLUSTER_URL``)."""
    from gateway.testing.redis import redis_cluster

    if url := os.environ.get("QRGW_TEST_REDIS_CLUSTER_URL"):
        yield url
        return
    with redis_cluster() as cluster:
        yield cluster.url


@pytest_asyncio.fixture(params=["memory", "redis", "cluster"])
async def store_case(request: pytest.FixtureRequest) -> AsyncIterator[StoreCase]:
    """Each Store implementation in turn (memory with a fake clock, Redis, Redis Cluster)."""
    from gateway.testing.redis import open_case

    async with open_case(request.param, request) as case:
        yield case
