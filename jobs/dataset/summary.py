"""The run's summary and its run-log row, in the contract's words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from batch import RunError, Tally
from jobs.dataset.outputs import runs_schema
from jobs.exits import DONE, PAUSED, TOO_MANY_ERRORS, exit_code_for
from jobs.privacy import mask_ci, mask_name, mask_value
from jobs.reconcile import Status
from jobs.settings import RunSettings

SINKS_LOADING, SINKS_LOADED = "loading", "loaded"  # a night's `sinks`: before, after the loads


def summary_of(tally: Tally, settings: RunSettings, figures: Mapping[str, Any]) -> dict[str, Any]:
    """summary.json: the counts of a finished, paused, dry or stopped run."""
    duration = (tally.finished_at - tally.started_at).total_seconds()
    requests = int(figures.get("requests", 0))
    summary: dict[str, Any] = {
        "run_id": settings.run_id,
        "state": tally.state,
        "run_date": settings.run_date.isoformat(),
        "input": settings.engine.input_path.name,
        "rows": tally.rows,
        "rejected": tally.rejected,
        "customers": tally.items,
        "input_read": input_read(tally.extra.get("read") or {}, settings, tally.state == "dry_run"),
    }
    plan = _plan(tally, settings)
    if plan:
        summary["plan"] = plan
    if tally.state == "dry_run":
        to_ask = plan["to_ask"] if plan else tally.open_items
        return {
            **summary,
            "to_ask": to_ask,
            "requests": 0,
            "estimated_requests": to_ask * 2,
            "estimated_duration_s": round(to_ask * 2 / settings.client.rate, 1),
            "started_at": tally.started_at.isoformat(),
            "finished_at": tally.finished_at.isoformat(),
        }
    stopped = tally.extra.get("stopped_by")
    if tally.state in ("stopped", "aborted", "failed"):
        return {
            **summary,
            "reason": tally.reason,
            "answered": tally.items - tally.unanswered,
            "unanswered": tally.unanswered,
            **_asked_and_carried(tally),
            **figures,
            "started_at": tally.started_at.isoformat(),
            "finished_at": tally.finished_at.isoformat(),
            "exit_code": _exit_code(tally, settings, stopped),
            "input_sha256": tally.extra.get("input_sha256"),
        }
    summary.update(
        {
            "linked": tally.counters[Status.LINKED],
            "non_member": tally.counters[Status.NON_MEMBER],
            "no_linked_account": tally.counters[Status.NO_LINKED_ACCOUNT],
            "error": tally.counters[Status.ERROR],
            "unanswered": tally.unanswered,
            **_asked_and_carried(tally),
            "errors_by_reason": dict(tally.failures.most_common(20)),
            "non_member_with_accounts": tally.counters["inconsistent"],
            "accounts": tally.written.get("accounts", 0),
            **figures,
            "resumed": tally.resumed,
            "accounting_ok": tally.accounting_ok,
            "started_at": tally.started_at.isoformat(),
            "finished_at": tally.finished_at.isoformat(),
            "duration_s": round(duration, 3),
            "requests_per_s": round(requests / duration, 2) if duration else 0.0,
            "exit_code": _exit_code(tally, settings, stopped),
        }
    )
    if settings.sinks and settings.engine.dataset_root is not None:
        summary["sinks"] = SINKS_LOADING  # amended once the loads end (jobs.dataset.loading)
    if "changes" in tally.extra:
        summary["changes"] = tally.extra["changes"]
    if "asked_on" in tally.extra:
        summary["customers_by_asked_on"] = tally.extra["asked_on"]
    summary["input_sha256"] = tally.extra.get("input_sha256")
    return summary


def _asked_and_carried(tally: Tally) -> dict[str, int]:
    """Customers answered by tonight's requests, and those whose earlier answer was carried."""
    return {
        "asked": int(tally.extra.get("asked", 0)),
        "carried": int(tally.extra.get("carried", 0)),
    }


def _plan(tally: Tally, settings: RunSettings) -> dict[str, int] | None:
    """Under --max-age: whom the night asks (in this order) and how many it carries."""
    plan = tally.extra.get("plan")
    if not plan:
        return None
    return {
        "max_age": settings.engine.max_age or 0,
        "new": plan["new"],
        "in_error": plan["failed"],
        "aged_out": plan["aged_out"],
        "carried": plan["carried"],
        "to_ask": plan["to_ask"],
        "requests": plan["to_ask"] * 2,
    }


def input_read(read: Mapping[str, Any], settings: RunSettings, samples: bool) -> dict[str, Any]:
    """How the input was read; with `samples`, its first rows with every value masked."""
    shown = {k: v for k, v in read.items() if k != "samples"}
    if "columns" in shown:  # a header row may hold a CI
        shown["columns"] = [settings.hidden(name) for name in shown["columns"]]
    if samples:
        masks = {settings.ci_column: mask_ci, settings.name_column: mask_name}
        shown["samples"] = [
            {
                name: (masks.get(name, mask_value)(value) if value else value)
                for name, value in row.items()
                if name in (settings.ci_column, settings.name_column, *settings.keep_columns)
            }
            for row in read.get("samples", [])
        ]
    return shown


def night_exit_code(summary: Mapping[str, Any], settings: RunSettings) -> int:
    """A published night's own exit code, whatever its sinks did: 1 over --max-error-rate."""
    customers = int(summary.get("customers") or 0)
    rate = int(summary.get("error") or 0) / customers if customers else 0.0
    return TOO_MANY_ERRORS if rate > settings.max_error_rate else DONE


def _exit_code(tally: Tally, settings: RunSettings, stopped: Any) -> int:
    if isinstance(stopped, RunError):
        return exit_code_for(stopped)
    if tally.state == "paused":
        return PAUSED
    rate = tally.counters[Status.ERROR] / tally.items if tally.items else 0.0
    return TOO_MANY_ERRORS if rate > settings.max_error_rate else DONE


def run_log_row(summary: Mapping[str, Any], settings: RunSettings) -> tuple[dict[str, Any], Any]:
    """One row of ROOT/runs.parquet for a run that got as far as its folder."""
    schema = runs_schema()
    times = {k: dt.datetime.fromisoformat(summary[k]) for k in ("started_at", "finished_at")}
    row = {
        **{k: summary.get(k) for k in schema.names},
        **times,
        "run_id": summary.get("run_id") or settings.run_id,  # a rerun amends the first's row
        "run_date": settings.run_date,
        "input": settings.engine.input_path.name,
    }
    return row, schema
