"""evos: an open operating system for smart electric cars."""

__version__ = "0.1.0"
