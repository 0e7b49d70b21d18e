"""One customer's record, its verdict, and the one place customers and records are turned
into and out of what the store keeps (the codecs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batch import UsageError, Verdict
from jobs.api.models import Customer, VirtualAccount
from jobs.privacy import Sealer
from jobs.reconcile import Reconciled, Status


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """What the API said of one customer, reconciled, when the answers came back, and on
    which run date they were asked (an earlier one when the answer was carried)."""

    outcome: Reconciled
    checked_at: dt.datetime
    asked_on: dt.date | None = None

    @property
    def is_final(self) -> bool:
        """An error is asked again on resume; anything else is final."""
        return self.outcome.status is not Status.ERROR

    @property
    def verdict(self) -> Verdict:
        """Final or not, the summary's counters (its status, and whether it is inconsistent),
        and the error that makes it a failure."""
        outcome = self.outcome
        counters = (outcome.status.value, *(("inconsistent",) if outcome.inconsistent else ()))
        return Verdict(self.is_final, counters, outcome.error)


class CustomerCodec:
    """Customers as the store keeps them: sealed under --pseudonymize, else plain JSON."""

    def __init__(self, sealer: Sealer | None) -> None:
        self._sealer = sealer

    def encode(self, value: Customer) -> dict[str, Any]:
        if self._sealer is not None:
            return {"sealed": self._sealer.seal(customer_to_store(value))}
        return customer_to_store(value)

    def decode(self, stored: Mapping[str, Any]) -> Customer:
        if "sealed" in stored:
            if self._sealer is None:
                raise UsageError("the progress store is sealed: run with --pseudonymize")
            return customer_from_store(self._sealer.open(stored["sealed"]))
        return customer_from_store(stored)


class RecordCodec:
    """Records as the store keeps them (`record_to_store` and back)."""

    def encode(self, value: CustomerRecord) -> dict[str, Any]:
        return record_to_store(value)

    def decode(self, stored: Mapping[str, Any]) -> CustomerRecord:
        return record_from_store(stored)


def customer_to_store(customer: Customer) -> dict[str, Any]:
    stored: dict[str, Any] = {"ci": customer.ci, "kor_name": customer.kor_name}
    if customer.kept:
        stored["keep"] = dict(customer.kept)
    return stored


def customer_from_store(stored: Mapping[str, Any]) -> Customer:
    kept = tuple((str(k), v) for k, v in (stored.get("keep") or {}).items())
    return Customer(stored["ci"], stored["kor_name"], kept)


def record_to_store(record: CustomerRecord) -> dict[str, Any]:
    """JSON-ready; the store's schema version 1 (`asked_on` was added, read as absent before)."""
    outcome = record.outcome
    terms = outcome.terms_expire_date
    return {
        "membership": outcome.membership,
        "linked_accounts": outcome.linked_accounts,
        "status": outcome.status.value,
        "next_action": outcome.next_action.value,
        "error": outcome.error,
        "terms_expire_date": terms.isoformat() if terms else None,
        "checked_at": record.checked_at.isoformat(),
        "asked_on": record.asked_on.isoformat() if record.asked_on else None,
        "inconsistent": outcome.inconsistent,
        "accounts": [[a.com_id, a.vt_acc_no, a.vt_acc_alias] for a in outcome.accounts],
    }


def record_from_store(stored: Mapping[str, Any]) -> CustomerRecord:
    terms = stored.get("terms_expire_date")
    outcome = Reconciled(
        membership=stored.get("membership"),
        linked_accounts=stored.get("linked_accounts"),
        status=Status(stored["status"]),
        error=stored.get("error"),
        terms_expire_date=dt.date.fromisoformat(terms) if terms else None,
        accounts=tuple(
            VirtualAccount(com_id, number, alias)
            for com_id, number, alias in stored.get("accounts") or ()
        ),
    )
    asked_on = stored.get("asked_on")
    return CustomerRecord(
        outcome,
        dt.datetime.fromisoformat(stored["checked_at"]),
        dt.date.fromisoformat(asked_on) if asked_on else None,
    )
