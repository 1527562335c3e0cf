"""Pydantic models of every message qrgw sends, receives or stores, and the error tree."""
