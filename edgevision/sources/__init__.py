"""Frame sources (see base.py for the interface)."""
from .base import EndOfStream, Source, SourceError

__all__ = ["EndOfStream", "Source", "SourceError"]
