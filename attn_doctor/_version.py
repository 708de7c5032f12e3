"""The package version (read by the build backend and by every module that reports it)."""

__version__ = "0.1.0"
