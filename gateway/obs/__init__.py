"""Observability: metrics, traces, access logs, readiness and the operator listener."""
