"""The KOSCOM service-integration API client: one customer, both questions at once."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import orjson

from batch import Log, RequestError
from batch.http import (
    GateRequest,
    GateSettings,
    GateStats,
    RequestGate,
    RetryPolicy,
    TransportSettings,
)
from jobs.api.answers import readers
from jobs.api.models import Api, ConsentAnswer, Customer, MembershipAnswer, Partner, envelope
from jobs.privacy import Redactor, mask_ci


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How to reach the API and how hard to push it."""

    base_url: str
    api_key: str = field(repr=False)
    partner: Partner
    rate: float
    concurrency: int
    timeout: float = 10.0
    connect_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    daily_reserve: int = 0
    max_outage: float = 900.0
    report_every: float = 30.0  # seconds between log lines while an outage lasts

    def gate(self) -> GateSettings:
        """The engine's settings for these."""
        headers = {
            "apikey": self.api_key,  # a header, never the URL: URLs end up in logs
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "member-recon",
        }
        return GateSettings(
            transport=TransportSettings(
                base_url=self.base_url,
                headers=headers,
                connections=self.concurrency,
                connect_timeout=self.connect_timeout,
                answer_timeout=self.timeout,
            ),
            rate=self.rate,
            retry=self.retry,
            daily_reserve=self.daily_reserve,
            max_outage=self.max_outage,
            report_every=self.report_every,
        )


class KoscomClient:
    """Asks both APIs about a customer at once, under the gate's limits."""

    def __init__(self, settings: ClientSettings, log: Log, redactor: Redactor) -> None:
        self.settings = settings
        self._gate = RequestGate(settings.gate(), log)
        self._read_membership, self._read_consent = readers(redactor)
        self.request_ids = new_request_ids()

    @property
    def stats(self) -> GateStats:
        return self._gate.stats

    @property
    def gate(self) -> RequestGate:
        return self._gate

    async def __aenter__(self) -> Self:
        await self._gate.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:  # noqa: PYI036  (passed on whole)
        await self._gate.__aexit__(*exc_info)

    async def check(
        self, customer: Customer
    ) -> tuple[MembershipAnswer | RequestError, ConsentAnswer | RequestError]:
        """Both answers for one customer; a failure stands in for an answer that never came."""
        # The design card asks both endpoints at once; one extra task is the cheapest way.
        consent = asyncio.ensure_future(
            self._gate.send(self._request(Api.CONSENT, customer), self._read_consent)
        )
        try:
            membership = await self._gate.send(
                self._request(Api.REGISTER, customer), self._read_membership
            )
        except BaseException:
            consent.cancel()
            await asyncio.gather(consent, return_exceptions=True)
            raise
        return membership, await consent

    def suspects(self) -> set[object]:
        """Customers (as the engine named them) whose answers may be others'."""
        return self._gate.suspects()

    def _request(self, api: Api, customer: Customer) -> GateRequest:
        body = orjson.dumps(envelope(self.settings.partner, customer, next(self.request_ids)))
        return GateRequest(
            api.value, body, cap=api.value, label=mask_ci(customer.ci), item=id(customer)
        )


def new_request_ids() -> Iterator[str]:
    """A per-run prefix and a counter: unique, 20 characters, traceable to the run."""
    prefix = secrets.token_hex(4)
    return (f"{prefix}{n:012x}" for n in itertools.count(1))
