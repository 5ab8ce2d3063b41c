"""Result sinks (see base.py for the interface)."""
from .base import Sink

__all__ = ["Sink"]
