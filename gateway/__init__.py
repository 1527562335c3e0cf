"""qrgw: cross-border QR payment interoperability gateway."""
__version__ = "0.1.0"
