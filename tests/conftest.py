"""Shared fixtures come from ``gateway.testing`` (shipped as a module, not copied here)."""

pytest_plugins = ["gateway.testing.fixtures", "partnerkit_fixtures"]
