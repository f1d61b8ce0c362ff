"""pyinit: a PID-1 init for containers that closes the rolling-update 502 race."""

__version__ = "0.1.0"
