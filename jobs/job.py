"""The reconciliation run: ingest the input, ask about every open customer, export the outputs."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batch.dataset import (
    append_run,
    earlier_partitions,
    partition_dir,
    publish_partition,
    stage_copy,
)
from batch.errors import (
    AbortError,
    AccountingError,
    ConfigurationError,
    InputError,
    Interrupted,
    PausedError,
    ResumeMismatch,
    RunError,
    StoreError,
    UsageError,
)
from batch.gate import GateStats
from batch.lock import FolderLock
from batch.progress import ProgressReport
from batch.reader import InputFile
from batch.runner import Outcome, Runner, run_async
from batch.store import NewItem, OpenItem, ProgressStore, Reject
from batch.writer import OutputSet, TableWriter, write_json
from jobs.changes import compute_changes
from jobs.client import ClientSettings, KoscomClient
from jobs.exits import DONE, PAUSED, TOO_MANY_ERRORS, exit_code_for, state_for
from jobs.models import Customer
from jobs.outputs import (
    DICTIONARY_COLUMNS,
    RECONCILED_COLUMNS,
    REJECT_COLUMNS,
    account_rows,
    accounts_schema,
    pseudonym,
    reconciled_row,
    reconciled_schema,
    runs_schema,
)
from jobs.reconcile import Reconciled, Status, reconcile
from jobs.sinks import SinkError, load
from jobs.validation import customer_or_problem

STORE_NAME = ".progress.sqlite"
OUTPUT_NAMES = (
    "reconciled.parquet",
    "reconciled.csv",
    "accounts.parquet",
    "accounts.csv",
    "rejects.csv",
    "summary.json",
)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything one run needs, resolved from flags, environment and defaults."""

    input_path: Path
    out_dir: Path
    client: ClientSettings
    file_format: str = "parquet"
    ci_column: str = "ci"
    name_column: str = "kor_name"
    encoding: str | None = None
    fresh: bool = False
    max_error_rate: float = 1.0
    chunk_rows: int = 20_000
    dry_run: bool = False
    progress_tty: bool = False
    progress_interval: float = 30.0
    keep_columns: tuple[str, ...] = ()
    pseudonym_key: bytes | None = field(default=None, repr=False)
    sheet: str | None = None
    dataset_root: Path | None = None  # --dataset: out_dir is then ROOT/_work/run_date=…
    run_date: dt.date = field(default_factory=lambda: dt.datetime.now().astimezone().date())
    sinks: tuple[str, ...] = ()
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def ci_field(self) -> str:
        return "ci_hmac" if self.pseudonym_key else "ci"

    def ci_value(self, ci: str) -> str:
        """The CI as outputs show it: as given, or its HMAC under --pseudonymize."""
        return pseudonym(self.pseudonym_key, ci) if self.pseudonym_key else ci


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished (or dry) run produced."""

    summary: dict[str, Any]
    exit_code: int
    outputs: tuple[Path, ...]


def run(settings: RunSettings, log: Any) -> RunResult:
    """Run the job once; raise a RunError for every way it can stop early."""
    started = _now()
    out_dir = settings.out_dir
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FolderLock(out_dir):
        if settings.fresh:
            _forget(out_dir)
        source = InputFile.open(settings.input_path, settings.encoding, settings.sheet)
        store = ProgressStore(out_dir / STORE_NAME)
        stats = GateStats()
        try:
            try:
                resumed = _claim(store, source, settings)
                if resumed:
                    log.info("resuming", done=store.counts()["done"], folder=str(out_dir))
                _ingest(store, source, settings, log)
                if settings.dry_run:
                    return _dry_run(store, settings, started)
                stats, stop = _ask_open_customers(store, settings, log)
                if stop is not None and not isinstance(stop, PausedError):
                    raise stop
                paused = stop if isinstance(stop, PausedError) else None
                result = _export(store, settings, started, stats, resumed=resumed, paused=paused)
                if settings.dataset_root is not None:
                    result = _publish_dataset(settings.dataset_root, settings, store, result, log)
            except KeyboardInterrupt as interrupt:  # a signal outside the asking phase
                signum = interrupt.args[0] if interrupt.args else signal.SIGINT
                name = signal.Signals(signum).name
                raise Interrupted(
                    f"stopped by {name}; progress is saved: run the same command again to resume",
                    signum,
                ) from None
        except RunError as exc:
            if _writes_stop_summary(exc):
                _write_stop_summary(store, settings, started, stats, exc)
            # A sink failure comes after the run's row is written: it is told by exit 5 alone.
            logged = isinstance(exc, UsageError | SinkError)
            if settings.dataset_root is not None and not logged:
                _log_run(settings.dataset_root, settings, store, started, None, exit_code_for(exc))
            raise
        finally:
            store.close()
        return result


def _writes_stop_summary(exc: RunError) -> bool:
    """Aborts, signals and network misconfiguration leave a summary for the alert to read."""
    return isinstance(exc, AbortError | Interrupted | ConfigurationError | StoreError)


def _write_stop_summary(
    store: ProgressStore,
    settings: RunSettings,
    started: dt.datetime,
    stats: GateStats,
    exc: RunError,
) -> None:
    """summary.json for a run that stopped early: its state, the reason, and the counts."""
    counts = store.counts()
    summary = {
        "run_id": settings.run_id,
        "state": state_for(exc),
        "reason": str(exc),
        "input": settings.input_path.name,
        "rows": int(store.get_meta("rows_total") or 0),
        "rejected": counts["rejected"],
        "customers": counts["items"],
        "answered": counts["done"] + counts["error"],
        "unanswered": counts["pending"],
        **_request_figures(stats),
        "started_at": started.isoformat(),
        "finished_at": _now().isoformat(),
        "exit_code": exit_code_for(exc),
    }
    with OutputSet(settings.out_dir) as outputs:
        write_json(outputs.aside("summary.json"), summary)
        outputs.publish()


def _request_figures(stats: GateStats) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "retries": stats.retries,
        "http_429": stats.http_429,
        "daily_remaining": stats.daily_remaining,
        "outages": stats.outages,
        "outage_seconds": stats.outage_seconds,
        "rate_cuts": stats.rate_cuts,
        "unsolicited_answers": stats.unsolicited_answers,
    }


def _publish_dataset(
    root: Path, settings: RunSettings, store: ProgressStore, result: RunResult, log: Any
) -> RunResult:
    """Swap the run's files in as ROOT/run_date=…, log the run, and load the sinks."""
    partition = partition_dir(root, settings.run_date)
    staging = root / "_work" / f".staging-{partition.name}-{os.getpid()}"
    stage_copy(list(result.outputs), staging)
    publish_partition(staging, partition)
    _log_run(root, settings, store, None, result.summary, result.exit_code)
    log.info("published", partition=str(partition))
    for url in settings.sinks:
        load(url, partition, settings.run_date, root / "runs.parquet")
        log.info("loaded", sink=urlsplit(url).scheme)
    outputs = tuple(partition / path.name for path in result.outputs)
    return RunResult(result.summary, result.exit_code, outputs)


def _log_run(  # noqa: PLR0917  (six values make one log row)
    root: Path,
    settings: RunSettings,
    store: ProgressStore,
    started: dt.datetime | None,
    summary: dict[str, Any] | None,
    exit_code: int,
) -> None:
    """One row in ROOT/runs.parquet for every run that got as far as its folder."""
    identity = json.loads(store.get_meta("identity") or "{}")
    if summary is None:
        counts = store.counts()
        summary = {
            "state": {3: "aborted", 4: "paused"}.get(exit_code, "stopped"),
            "rows": int(store.get_meta("rows_total") or 0),
            "rejected": counts["rejected"],
            "customers": counts["items"],
            "started_at": (started or _now()).isoformat(),
            "finished_at": _now().isoformat(),
        }
    times = {k: dt.datetime.fromisoformat(summary[k]) for k in ("started_at", "finished_at")}
    row = {
        **{k: summary.get(k) for k in runs_schema().names},
        **times,
        "run_id": settings.run_id,
        "run_date": settings.run_date,
        "input": settings.input_path.name,
        "input_sha256": identity.get("input_sha256"),
        "exit_code": exit_code,
    }
    append_run(root, row, runs_schema())


def _claim(store: ProgressStore, source: InputFile, settings: RunSettings) -> bool:
    """Tie the folder's progress to this input and partner; True if there is progress to resume."""
    identity = json.dumps(
        {
            "input_sha256": source.fingerprint(),
            "ci_column": settings.ci_column,
            "name_column": settings.name_column,
            "com_id": settings.client.partner.com_id,
            "srv_id": settings.client.partner.srv_id,
            "base_url": settings.client.base_url.rstrip("/"),  # never mix two hosts' answers
            "keep_columns": list(settings.keep_columns),
            "sheet": settings.sheet,
        },
        sort_keys=True,
    )
    known = store.get_meta("identity")
    if known is None:
        store.set_meta("identity", identity)
        return False
    if known != identity:
        mine, theirs = json.loads(identity), json.loads(known)
        differs = ", ".join(k for k in sorted(mine) if mine[k] != theirs.get(k))
        raise ResumeMismatch(
            f"{settings.out_dir} holds progress of another run ({differs} differ); "
            "pass --fresh to start over, or choose another --out"
        )
    return True


def _ingest(store: ProgressStore, source: InputFile, settings: RunSettings, log: Any) -> None:
    """Validate and deduplicate the input into the store, a chunk per transaction."""
    if store.get_meta("ingest_complete") == "1":
        return
    columns = source.columns()
    wanted = [(settings.ci_column, "--ci-column"), (settings.name_column, "--name-column")]
    wanted += [(name, "--keep-columns") for name in settings.keep_columns]
    for name in settings.keep_columns:
        if name in RECONCILED_COLUMNS or name == "ci_hmac":
            raise UsageError(f"--keep-columns {name!r} would hide an output column of that name")
    for needed, flag in wanted:
        if needed not in columns:
            shown = ", ".join(repr(c[:24]) for c in columns[:8])
            raise InputError(f"input has no column {needed!r} (it has {shown}); see {flag}")
    store.set_meta("columns", json.dumps(columns, ensure_ascii=False))
    last_row = store.rows_ingested
    for chunk in source.iter_chunks(settings.chunk_rows, skip_rows=last_row):
        items, rejects = _sort_chunk(store, chunk, settings)
        last_row = chunk[-1].row
        store.ingest_chunk(items, rejects, rows=last_row)
        log.debug("ingested", rows=last_row)
    store.set_meta("rows_total", str(last_row))
    store.set_meta("ingest_complete", "1")


def _sort_chunk(
    store: ProgressStore, chunk: list[Any], settings: RunSettings
) -> tuple[list[NewItem], list[Reject]]:
    """Split a chunk into new customers and rejects (invalid, or a CI seen on an earlier row)."""
    rejects: list[Reject] = []
    candidates: list[tuple[Any, Customer]] = []
    for raw in chunk:
        if raw.problem is not None:
            rejects.append(Reject(raw.row, f"row {raw.problem}", raw.values))
            continue
        verdict = customer_or_problem(
            raw.values.get(settings.ci_column), raw.values.get(settings.name_column)
        )
        if isinstance(verdict, str):
            rejects.append(Reject(raw.row, verdict, raw.values))
        else:
            candidates.append((raw, verdict))
    first_seen = store.first_rows([customer.ci for _, customer in candidates])
    items: list[NewItem] = []
    for raw, customer in candidates:
        first = first_seen.get(customer.ci)
        if first is not None:
            rejects.append(Reject(raw.row, f"duplicate ci: first seen on row {first}", raw.values))
            continue
        first_seen[customer.ci] = raw.row
        payload: dict[str, Any] = {"ci": customer.ci, "kor_name": customer.kor_name}
        if settings.keep_columns:
            payload["keep"] = {name: raw.values.get(name) for name in settings.keep_columns}
        items.append(NewItem(raw.row, customer.ci, payload))
    return items, rejects


def _ask_open_customers(
    store: ProgressStore, settings: RunSettings, log: Any
) -> tuple[GateStats, RunError | None]:
    counts = store.counts()
    open_customers = counts["pending"] + counts["error"]
    if open_customers == 0:
        return GateStats(), None
    log.info("asking", customers=open_customers, rate=settings.client.rate)
    return run_async(_ask_all(store, settings, log, open_customers))


async def _ask_all(
    store: ProgressStore, settings: RunSettings, log: Any, open_customers: int
) -> tuple[GateStats, RunError | None]:
    began = time.monotonic()
    async with KoscomClient(settings.client, log) as client:
        progress = ProgressReport(
            open_customers,
            tty=settings.progress_tty,
            log=log,
            interval=settings.progress_interval,
            extra=lambda: {
                "requests": client.stats.requests,
                "retries": client.stats.retries,
                "req_per_s": round(client.stats.requests / max(time.monotonic() - began, 1e-9), 1),
                "quota": settings.client.rate,
            },
        )

        async def answer(item: OpenItem) -> Outcome:
            customer = Customer(item.payload["ci"], item.payload["kor_name"])
            membership, consent = await client.check(customer)
            outcome = reconcile(membership, consent)
            state = "error" if outcome.status is Status.ERROR else "done"
            return Outcome(state, _stored_result(outcome, _now()))

        runner = Runner(
            store,
            answer,
            workers=settings.client.concurrency,
            drain_timeout=settings.client.timeout + 2,
            on_outcome=lambda outcome: progress.update(outcome.result["status"]),
        )
        stop = None
        try:
            await runner.run()
        except RunError as exc:  # the summary still needs the request figures
            stop = exc
        finally:
            progress.close()
            log.info(
                "asked",
                customers=runner.finished,
                requests=client.stats.requests,
                retries=client.stats.retries,
            )
    return client.stats, stop


def _stored_result(outcome: Reconciled, checked_at: dt.datetime) -> dict[str, Any]:
    return {
        "membership": outcome.membership,
        "linked_accounts": outcome.linked_accounts,
        "status": outcome.status.value,
        "next_action": outcome.next_action.value,
        "error": outcome.error,
        "terms_expire_date": outcome.terms_expire_date.isoformat()
        if outcome.terms_expire_date
        else None,
        "checked_at": checked_at.isoformat(),
        "inconsistent": outcome.inconsistent,
        "accounts": [[a.com_id, a.vt_acc_no, a.vt_acc_alias] for a in outcome.accounts],
    }


def _export(
    store: ProgressStore,
    settings: RunSettings,
    started: dt.datetime,
    stats: GateStats,
    *,
    resumed: bool,
    paused: PausedError | None,
) -> RunResult:
    """Write the outputs from the store in input order; on a pause, only rejects and summary."""
    counts = store.counts()
    tally: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    change_counts: Counter[str] | None = None
    ext = settings.file_format
    ci_field = settings.ci_field
    reconciled = reconciled_schema(ci_field, settings.keep_columns)
    with OutputSet(settings.out_dir) as outputs:
        if paused is None:
            rec_path = outputs.aside(f"reconciled.{ext}")
            acc_path = outputs.aside(f"accounts.{ext}")
            with (
                TableWriter(rec_path, reconciled, ext, DICTIONARY_COLUMNS) as rec,
                TableWriter(acc_path, accounts_schema(ci_field), ext, DICTIONARY_COLUMNS) as acc,
            ):
                for batch in store.iter_items():
                    shown = [settings.ci_value(item.key) for item in batch]
                    pairs = list(zip(batch, shown, strict=True))
                    rec.write([reconciled_row(item, ci_field, ci) for item, ci in pairs])
                    acc.write([r for item, ci in pairs for r in account_rows(item, ci_field, ci)])
                    for item in batch:
                        result = item.result or {}
                        tally[result.get("status", "unanswered")] += 1
                        tally["inconsistent"] += bool(result.get("inconsistent"))
                        if result.get("error"):
                            errors[result["error"]] += 1
            written, accounts = rec.rows, acc.rows
            if settings.dataset_root is not None:
                changes = compute_changes(
                    (rec_path, acc_path), _previous_run(settings.dataset_root, settings), ci_field
                )
                with TableWriter(
                    outputs.aside(f"changes.{ext}"), changes.schema, ext, DICTIONARY_COLUMNS
                ) as feed:
                    feed.write_table(changes)
                change_counts = Counter(changes.column("event").to_pylist())
        else:
            written, accounts = 0, 0
        _write_rejects(outputs.aside("rejects.csv"), store, settings)
        rows = int(store.get_meta("rows_total") or 0)
        accounting_ok = rows == counts["items"] + counts["rejected"] and (
            paused is not None or written == counts["items"]
        )
        customers = counts["items"]
        error_rate = tally["error"] / customers if customers else 0.0
        exit_code = (
            PAUSED
            if paused
            else (TOO_MANY_ERRORS if error_rate > settings.max_error_rate else DONE)
        )
        finished = _now()
        duration = (finished - started).total_seconds()
        summary: dict[str, Any] = {
            "run_id": settings.run_id,
            "state": "paused" if paused else "done",
            "input": settings.input_path.name,
            "rows": rows,
            "rejected": counts["rejected"],
            "customers": customers,
            "linked": tally[Status.LINKED],
            "non_member": tally[Status.NON_MEMBER],
            "no_linked_account": tally[Status.NO_LINKED_ACCOUNT],
            "error": tally[Status.ERROR],
            "unanswered": counts["pending"],
            "errors_by_reason": dict(errors.most_common(20)),
            "non_member_with_accounts": tally["inconsistent"],
            "accounts": accounts,
            **_request_figures(stats),
            "resumed": resumed,
            "accounting_ok": accounting_ok,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
            "duration_s": round(duration, 3),
            "requests_per_s": round(stats.requests / duration, 2) if duration else 0.0,
            "exit_code": exit_code,
        }
        if change_counts is not None:
            summary["changes"] = dict(sorted(change_counts.items()))
        if not accounting_ok:
            raise AccountingError(
                f"accounting mismatch: {rows} rows read, {counts['items']} customers "
                f"+ {counts['rejected']} rejected, {written} written; outputs not published"
            )
        write_json(outputs.aside("summary.json"), summary)
        published = outputs.publish()
    if paused is not None:
        raise PausedError(
            f"{paused}; {counts['pending']} customers remain: run the same command again "
            "after the daily reset (09:00 KST) to finish them"
        )
    return RunResult(summary, exit_code, tuple(published))


def _previous_run(root: Path, settings: RunSettings) -> tuple[Path, Path, dt.date] | None:
    """The latest earlier partition of a finished run, to compare this one with."""
    for day, partition in earlier_partitions(root, settings.run_date):
        summary = partition / "summary.json"
        files = (partition / "reconciled.parquet", partition / "accounts.parquet")
        finished = summary.exists() and all(f.exists() for f in files)
        if finished and json.loads(summary.read_text(encoding="utf-8")).get("state") == "done":
            return files[0], files[1], day
    return None


def _write_rejects(path: Path, store: ProgressStore, settings: RunSettings) -> None:
    """Rejected rows with their values; under --pseudonymize the CI column is its HMAC."""
    columns: list[str] = json.loads(store.get_meta("columns") or "[]")
    hidden = settings.ci_column if settings.pseudonym_key else None
    header = [f"{c}_hmac" if c == hidden else c for c in columns]

    def value(raw: dict[str, Any], column: str) -> str:
        text = raw.get(column) or ""
        return settings.ci_value(text.strip()) if column == hidden and text else text

    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*REJECT_COLUMNS, *header])
        for batch in store.iter_rejects():
            writer.writerows([r.row, r.reason, *(value(r.raw, c) for c in columns)] for r in batch)


def _dry_run(store: ProgressStore, settings: RunSettings, started: dt.datetime) -> RunResult:
    counts = store.counts()
    with OutputSet(settings.out_dir) as outputs:
        _write_rejects(outputs.aside("rejects.csv"), store, settings)
        published = outputs.publish()
    open_customers = counts["pending"] + counts["error"]
    summary = {
        "run_id": settings.run_id,
        "state": "dry_run",
        "rows": int(store.get_meta("rows_total") or 0),
        "rejected": counts["rejected"],
        "customers": counts["items"],
        "to_ask": open_customers,
        "requests": 0,
        "estimated_requests": open_customers * 2,
        "estimated_duration_s": round(open_customers * 2 / settings.client.rate, 1),
        "started_at": started.isoformat(),
        "finished_at": _now().isoformat(),
    }
    return RunResult(summary, 0, tuple(published))


def _forget(out_dir: Path) -> None:
    """--fresh: drop the progress and the outputs of earlier runs in this folder."""
    for name in (STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", *OUTPUT_NAMES):
        (out_dir / name).unlink(missing_ok=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
