"""Structured logs that carry the run id; jobs/privacy.py's redactor passes over every value."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from batch import Log
from jobs.privacy import Redactor


def _local_time(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The event's time as the machine's clock shows it: `2026-11-24 18:13:05 KST`."""
    event["timestamp"] = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return event


def configure(
    *, log_format: str, debug: bool, run_id: str, secrets: Iterable[str]
) -> tuple[Log, Redactor]:
    """Set up logging to stderr and return the run's logger and its redactor."""
    redactor = Redactor(secrets)
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            # JSON for machines, in UTC; text for people, in the machine's own zone, named.
            structlog.processors.TimeStamper(fmt="iso", utc=True)
            if log_format == "json"
            else _local_time,
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if debug else logging.INFO
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    return structlog.get_logger().bind(run_id=run_id), redactor
