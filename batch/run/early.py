"""Opening the input before the folder is claimed, and the summary of a run that stops early.

Nothing was read into the store yet, but the contract still owes the folder a
`summary.json` saying the run stopped and why, and a dataset its run-log row.
"""

from __future__ import annotations

import collections
import datetime as dt
import signal
import sqlite3
from collections.abc import Callable
from typing import Any

from batch.contract import Job, Tally
from batch.errors import AbortError, Interrupted, PausedError, RunError
from batch.inputs import InputFile, Layout
from batch.log import Log
from batch.outputs import OutputSet, append_run, write_json
from batch.run.ingest import identity_of
from batch.settings import BatchSettings


def open_input(
    job: Job, settings: BatchSettings, log: Log, started: dt.datetime
) -> tuple[InputFile, Layout, dict[str, Any]]:
    """The input, its header and columns, and the identity its hash gives the folder."""
    try:
        source = InputFile.open(
            settings.input_path,
            settings.encoding,
            settings.sheet,
            settings.legacy_encodings,
            delimiter=settings.delimiter,
            header_row=settings.header_row,
        )
        layout = source.layout(job.columns())
        return source, layout, identity_of(job, settings, source)
    except KeyboardInterrupt as interrupt:  # a signal while the input is opened or hashed
        signum = interrupt.args[0] if interrupt.args else signal.SIGINT
        stop = Interrupted(stopped_by(signum), signum)
        stopped_early(job, settings, log, started, stop)
        raise stop from None


_STOP_STATES = ((PausedError, "paused"), (Interrupted, "stopped"), (AbortError, "aborted"))


def state_of(error: RunError) -> str:
    """The state a run that stopped with `error` ends in."""
    for kind, state in _STOP_STATES:
        if isinstance(error, kind):
            return state
    return "failed"


def stopped_by(signum: int) -> str:
    name = signal.Signals(signum).name
    return f"stopped by {name}; progress is saved: run the same command again to resume"


def stopped_early(
    job: Job, settings: BatchSettings, log: Log, started: dt.datetime, stop: Interrupted
) -> None:
    """Leave the summary (and run-log row) of a run stopped before it read anything."""
    tally = Tally(
        state="stopped",
        reason=str(stop),
        rows=0,
        rejected=0,
        items=0,
        unanswered=0,
        open_items=0,
        counters=collections.Counter(),
        failures=collections.Counter(),
        written={},
        figures={},
        resumed=False,
        accounting_ok=True,
        started_at=started,
        finished_at=dt.datetime.now(dt.UTC),
        extra={"stopped_by": stop},
    )
    leave_stop_summary(job, settings, log, lambda: job.summary(tally), log_run=True)


def leave_stop_summary(
    job: Job,
    settings: BatchSettings,
    log: Log,
    summary_of: Callable[[], dict[str, Any]],
    *,
    log_run: bool,
) -> bool:
    """summary.json, and with `log_run` the dataset's run-log row, of a run that stopped
    early; True once the row is logged. A broken store or a full disk may forbid it: the
    exit code still says what happened."""
    try:
        summary = summary_of()
        with OutputSet(settings.out_dir, mode=settings.file_mode) as outputs:
            write_json(outputs.aside("summary.json"), summary)
            outputs.publish()
        if log_run and settings.dataset_root is not None:
            row, schema = job.run_log(summary)
            append_run(settings.dataset_root, row, schema, settings.file_mode)
            return True
    except (OSError, sqlite3.Error) as second:
        log.warning("no_summary", reason=f"{type(second).__name__}: {second}"[:200])
    return False
