"""The KOSCOM job as the engine runs it: customers in, reconciled customers and accounts out."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from batch import (
    Admitted,
    Answer,
    BaseAsker,
    BaseJob,
    Codec,
    Column,
    Earlier,
    InputError,
    Log,
    RowValues,
    Stored,
    Table,
    TableRows,
    Tally,
    Verdict,
    View,
)
from batch.http import GateStats
from batch.outputs import TableWriter
from jobs.api.client import KoscomClient
from jobs.api.models import Customer
from jobs.dataset.changes import compute_changes
from jobs.dataset.earlier import latest_answers, question_of
from jobs.dataset.loading import load_all
from jobs.dataset.outputs import (
    DICTIONARY_COLUMNS,
    account_rows,
    accounts_schema,
    reconciled_row,
    reconciled_schema,
    timeline_schema,
    workbook_views,
)
from jobs.dataset.summary import run_log_row, summary_of
from jobs.exits import DONE, TOO_MANY_ERRORS
from jobs.privacy import Redactor, Sealer, input_pieces
from jobs.reconcile import reconcile
from jobs.record import CustomerCodec, CustomerRecord, RecordCodec
from jobs.settings import RunSettings
from jobs.validation import customer_or_problem, kept_problem

# Headers people give the two columns; one of them is suggested when the default is missing.
CI_ALIASES = ("ci", "CI", "고객CI", "연계정보")
NAME_ALIASES = ("kor_name", "성명", "이름", "고객명", "name", "korName", "한글성명")
RECORDS: Codec[CustomerRecord] = RecordCodec()


class KoscomAsker(BaseAsker):
    """Asks both APIs about one customer and reconciles the answers."""

    def __init__(
        self,
        client: KoscomClient,
        rate: float,
        redactor: Redactor,
        run_date: dt.date,
        customers: Codec[Customer],
    ) -> None:
        self._client = client
        self._customers = customers
        self._run_date = run_date
        self._rate = rate
        self._redactor = redactor
        self._began = time.monotonic()

    async def ask(self, item: Stored) -> Answer:
        membership, consent = await self._client.check(self._customers.decode(item))
        outcome = reconcile(membership, consent)
        if outcome.error:  # what it quotes of a server was cleaned; this is a second pass
            outcome = dataclasses.replace(outcome, error=self._redactor.text(outcome.error))
        record = CustomerRecord(outcome, dt.datetime.now(dt.UTC), self._run_date)
        return Answer(RECORDS.encode(record), record.verdict)

    def suspects(self) -> set[object]:
        """Customers answered on a connection that carried an answer nobody asked for."""
        return self._client.suspects()

    def figures(self) -> dict[str, Any]:
        stats = self._client.stats
        elapsed = max(time.monotonic() - self._began, 1e-9)
        return {
            "requests": stats.requests,
            "retries": stats.retries,
            "http_429": stats.http_429,
            "req_per_s": round(stats.requests / elapsed, 1),
            "quota": self._rate,
            "outage_seconds": round(self._client.gate.circuit.outage_seconds, 1),
        }

    def waiting(self) -> bool:
        """True while the API is down: the customers in flight only wait for it."""
        return self._client.gate.circuit.is_open


class KoscomJob(BaseJob):
    """Implements `batch.contract.Job` for customers (CI and name) and KOSCOM's two APIs."""

    unit = "cust"
    key_name = "ci"
    extra_outputs: tuple[str, ...] = ("changes.parquet", "changes.csv")

    def __init__(self, settings: RunSettings, log: Log) -> None:
        self.settings = settings
        self._log = log
        self.key_name = settings.ci_column  # "duplicate CI: first seen on row 5"
        self._client: KoscomClient | None = None
        key = settings.pseudonym_key
        self._sealer = Sealer(key) if key else None
        self._customers: Codec[Customer] = CustomerCodec(self._sealer)

    def identity(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "ci_column": settings.ci_column,
            "name_column": settings.name_column,
            "com_id": settings.client.partner.com_id,
            "srv_id": settings.client.partner.srv_id,
            "base_url": settings.client.base_url.rstrip("/"),  # never mix two hosts' answers
            "keep_columns": list(settings.keep_columns),
            "sheet": settings.engine.sheet,
            # Store keys are HMACs under --pseudonymize: another key could not resume.
            "pseudonym_key_id": self._sealer.key_id if self._sealer else None,
        }

    def columns(self) -> Sequence[Column]:
        settings = self.settings
        return [
            Column(settings.ci_column, "ci_column", CI_ALIASES),
            Column(settings.name_column, "name_column", NAME_ALIASES),
            *(Column(name, "keep_columns", suggest=False) for name in settings.keep_columns),
        ]

    def admit(self, values: RowValues) -> Admitted | str:
        settings = self.settings
        verdict = customer_or_problem(
            values.get(settings.ci_column),
            values.get(settings.name_column),
            (settings.ci_column, settings.name_column),  # reasons in the input's own words
        )
        if isinstance(verdict, str):
            return verdict
        kept = tuple((name, values.get(name)) for name in settings.keep_columns)
        problem = next(filter(None, (kept_problem(name, value) for name, value in kept)), None)
        if problem is not None:
            return problem
        if self._sealer is not None:
            for name, value in kept:
                if value and input_pieces(value, verdict.ci):
                    raise InputError(  # an input error: the folder stays free
                        f"--keep-columns {name!r} holds CI-shaped values; under "
                        "--pseudonymize no output may carry a CI"
                    )
        # The store's key is what outputs show: the CI, or its HMAC under --pseudonymize.
        customer = Customer(verdict.ci, verdict.kor_name, kept)
        question = question_of(verdict.kor_name, settings.pseudonym_key)
        key = settings.ci_value(verdict.ci)
        return Admitted(key, self._customers.encode(customer), question)

    @contextlib.asynccontextmanager
    async def asker(self, log: Log) -> AsyncIterator[KoscomAsker]:
        client = self.settings.client
        secrets = [client.api_key, (self.settings.pseudonym_key or b"").decode(errors="replace")]
        redactor = Redactor(secrets)
        async with KoscomClient(client, log, redactor) as opened:
            self._client = opened
            run_date = self.settings.run_date
            yield KoscomAsker(opened, client.rate, redactor, run_date, self._customers)

    def request_figures(self) -> Mapping[str, Any]:
        """What the last asking phase sent and got back (nothing, when nothing was asked)."""
        stats = self._client.stats if self._client is not None else GateStats()
        return {
            "requests": stats.requests,
            "retries": stats.retries,
            "resent": stats.resent,
            "http_429": stats.http_429,
            "daily_remaining": stats.daily_remaining,
            "outages": stats.outages,
            "outage_seconds": stats.outage_seconds,
            "rate_cuts": stats.rate_cuts,
            "unsolicited_answers": stats.unsolicited_answers,
            "asked_again": stats.suspect_answers,
        }

    def tables(self) -> Sequence[Table]:
        ci_field = self.settings.ci_field
        reconciled = reconciled_schema(ci_field, self.settings.keep_columns)
        return [
            Table("reconciled", reconciled, DICTIONARY_COLUMNS),
            Table("accounts", accounts_schema(ci_field), DICTIONARY_COLUMNS),
        ]

    def timeline_schema(self) -> Any:
        return timeline_schema()

    def rows(self, key: str, item: Stored, result: Stored) -> TableRows:
        ci_field, ci = self.settings.ci_field, key  # the key is already as outputs show it
        customer, record = self._customers.decode(item), RECORDS.decode(result)
        if record.asked_on is None:  # answered before asked_on was recorded: tonight's run
            record = dataclasses.replace(record, asked_on=self.settings.run_date)
        return {
            "reconciled": [reconciled_row(customer, record, ci, ci_field)],
            "accounts": account_rows(record, ci, ci_field),
        }

    def views(self) -> Sequence[View]:
        return workbook_views(self.settings.ci_field, self.settings.keep_columns)

    def judge(self, result: Stored) -> Verdict:
        return RECORDS.decode(result).verdict

    def reject_values(self, values: RowValues) -> RowValues:
        """Under --pseudonymize no raw CI survives a reject, whatever column it shifted into.

        The CI column shows its HMAC under a name that says so; in every other column,
        and in the column names (a header row may hold a CI), every piece of a CI (a
        malformed row moves the CI elsewhere, a CI split by spaces is still one) is
        replaced by its HMAC too. The engine keeps only what this returns, in the store too.
        """
        settings = self.settings
        if not settings.pseudonym_key:
            return values
        hidden = settings.ci_column
        return {
            (f"{name}_hmac" if name == hidden else settings.hidden(name)): (
                settings.ci_value(value.strip())
                if name == hidden and value
                else (settings.hidden(value) if value else value)
            )
            for name, value in values.items()
        }

    def finish(self, written: Mapping[str, Path], aside: Any) -> dict[str, Any]:
        """Under --dataset, the change feed against the last good night."""
        settings, engine = self.settings, self.settings.engine
        if engine.dataset_root is None:
            return {}
        changes = compute_changes(
            engine.dataset_root,
            (written["reconciled"], written["accounts"]),
            settings.run_date,
            settings.ci_field,
        )
        path = aside(f"changes.{engine.file_format}")
        with TableWriter(path, changes.schema, engine.file_format, DICTIONARY_COLUMNS) as feed:
            feed.write_table(changes)
        events: dict[str, int] = {}
        for event in changes.column("event").to_pylist():
            events[event] = events.get(event, 0) + 1
        extra: dict[str, Any] = {"changes": dict(sorted(events.items()))}
        if engine.max_age is not None:  # how stale tonight's answers are, for the report
            extra["asked_on"] = _asked_on_counts(written["reconciled"])
        return extra

    def summary(self, tally: Tally) -> dict[str, Any]:
        return summary_of(tally, self.settings, self.request_figures())

    def keeps_progress(self, summary: Mapping[str, Any]) -> bool:
        """A night that ends with customers in error (exit 0 or 1) keeps its store, for the
        same command to ask exactly those again and publish the night whole.

        Without errors it goes: the store holds every CI and name (sealed under
        --pseudonymize). A later dataset night retires the stores kept before it.
        """
        errors = int(summary.get("error") or 0)
        return errors > 0 and summary.get("exit_code") in (DONE, TOO_MANY_ERRORS)

    def earlier(self) -> Iterable[Earlier]:
        """Every customer's answer in the dataset's last finished night (for --max-age)."""
        settings = self.settings
        if settings.engine.dataset_root is None:
            return iter(())
        return latest_answers(
            settings.engine.dataset_root,
            settings.run_date,
            settings.ci_field,
            settings.pseudonym_key,
            self._log,
        )

    def run_log(self, summary: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        return run_log_row(summary, self.settings)

    def after_publish(self, published: Mapping[str, Path], run_log: Path) -> None:
        load_all(self.settings, published, run_log, self._log)


def _asked_on_counts(reconciled: Path) -> dict[str, int]:
    """Customers by the run date that asked their answer, newest first."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    counts = pq.read_table(reconciled, columns=["asked_on"]).column("asked_on").value_counts()
    found = {str(entry["values"]): int(entry["counts"]) for entry in counts.to_pylist()}
    return dict(sorted(found.items(), reverse=True))
