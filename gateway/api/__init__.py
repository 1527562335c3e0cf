"""The gateway's HTTP API: middlewares and route modules wired by ``gateway.app``."""
