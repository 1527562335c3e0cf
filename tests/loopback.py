"""Start an aiohttp app on a free loopback port (the tests of observability, readiness and OpenAPI)."""

from __future__ import annotations

from aiohttp import web


async def start(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    """The started runner (``cleanup()`` it) and the app's base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def scrape(gateway_app: web.Application) -> str:
    """``GET /metrics`` of a running gateway app, through an operator listener started for the call."""
    import httpx

    from gateway.obs.admin import create_admin_app

    runner, url = await start(create_admin_app(gateway_app))
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{url}/metrics")).text
    finally:
        await runner.cleanup()
