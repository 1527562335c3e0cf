"""Test helpers shipped with qrgw: a real redis-server on a free port, sandbox partners over
loopback, log capture, key generation. Used by qrgw's own tests and by partners' engineers."""
