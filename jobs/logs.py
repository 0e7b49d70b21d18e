"""Structured logs that carry the run id and can never carry a CI or the API key."""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from batch.log import Log

# A CI is 88 characters of base64 ending in "==" (64 bytes); mask anything shaped like one.
_CI_SHAPED = re.compile(r"[A-Za-z0-9+/]{86}==")


class Redactor:
    """A structlog processor and a plain function: masks CIs and removes secrets from text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # A secret shorter than 8 characters would mask ordinary words; real keys are longer.
        self._secrets = tuple(s for s in secrets if len(s) >= 8)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, "***")
        return _CI_SHAPED.sub(lambda m: f"{m.group()[:4]}…(88)", value)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.text(value)
        return event


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
