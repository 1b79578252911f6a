"""The cloud's end of the gateway sync protocol (docs/sync.md)."""

from .api import IngestContext, router

__all__ = ["IngestContext", "router"]
