"""Mintlog: an API-first backend for log management and the incident flow."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
