"""pytest plugin: fixtures shared by every test module (``pytest_plugins`` in tests/conftest.py)."""

from __future__ import annotations
