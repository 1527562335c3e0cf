"""Test helpers that never ship in the runtime packages."""
