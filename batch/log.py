"""The logger the engine writes to: structlog's bound logger fits, and so does a test's fake."""

from __future__ import annotations

from typing import Any, Protocol


class Log(Protocol):
    """Structured events: a short name and masked fields."""

    def debug(self, event: str, **fields: Any) -> Any: ...

    def info(self, event: str, **fields: Any) -> Any: ...

    def warning(self, event: str, **fields: Any) -> Any: ...

    def is_enabled_for(self, level: int) -> bool: ...
