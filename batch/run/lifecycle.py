"""A run's whole life: lock, claim, ingest, ask, export, account, publish.

    run_batch(job, settings, log)
      FolderLock ─ one run per folder; the kernel drops the lock when its holder dies
      layout     ─ find the header and check the columns (batch.inputs.reader): a mistake there
                   leaves the folder unclaimed
      claim      ─ tie the folder's store to this input and job (batch.run.ingest)
      ingest     ─ admit rows, reject the rest, a chunk per transaction (batch.run.ingest);
                   an input with no item to ask about is bad input, and frees the folder
      ask        ─ bounded workers answer every open item (batch.run.runner), group-committed
      export     ─ every table from the store, in input order (batch.outputs.export)
      account    ─ rows read == items + rejects, and every item written: else nothing is published
      publish    ─ files renamed into place together; with a dataset root, each table's
                   night renamed into its partition, then a row appended to the run log

A run that stops early (a pause, an abort, a signal, a network misconfiguration)
still leaves `summary.json` with its state and reason, and publishes no table.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import signal
from collections.abc import Iterable, Mapping
from typing import Any

from batch.contract import Earlier, Job, Tally
from batch.errors import (
    AbortError,
    AccountingError,
    ConfigurationError,
    InputError,
    Interrupted,
    PausedError,
    RunError,
    StoreError,
    UsageError,
)
from batch.inputs import InputFile, Layout
from batch.log import Log
from batch.outputs import (
    FORMATS,
    Exported,
    OutputSet,
    append_run,
    export_tables,
    placer,
    prepare_folders,
    remove_stale,
    write_json,
    write_rejects,
)
from batch.run.asking import ask_all
from batch.run.carry import Plan, lenders, lent_answers, plan_night, retire
from batch.run.early import leave_stop_summary, open_input, state_of, stopped_by
from batch.run.ingest import KEPT_FOR_ERRORS, check_input, claim, how_read, ingest, open_store
from batch.run.published import (
    after_publish,
    finish_published,
    forget_published,
    published_files,
    remember,
)
from batch.run.runner import run_async
from batch.run.timeline import TIMELINE_NAME, TIMELINE_TABLE, write_timeline
from batch.settings import BatchResult, BatchSettings
from batch.signals import deferred
from batch.store import (
    FINISHED_NAME,
    STORE_NAME,
    FolderLock,
    ProgressStore,
    finished_before,
    forget,
    mark_finished,
)


def run_batch(job: Job, settings: BatchSettings, log: Log) -> BatchResult:
    """Run the life cycle once; raise a `RunError` for every way it can stop early."""
    started = _now()
    out_dir = settings.out_dir
    prepare_folders(out_dir, settings.dataset_root, settings.run_date, settings.file_mode)
    with FolderLock(out_dir):
        if settings.fresh:
            tables = [t.name for t in job.tables()] + [TIMELINE_TABLE]
            names = [f"{table}.{ext}" for table in tables for ext in FORMATS]
            extra = [*job.extra_outputs, "rejects.csv", "summary.json", TIMELINE_NAME]
            forget(out_dir, [*names, *extra])
        source, layout, identity = open_input(job, settings, log, started)
        finished = finished_before(out_dir, identity)
        if finished is not None:
            log.info("finished_before", folder=str(out_dir))
            return BatchResult(*finished, finished_before=True)
        (out_dir / FINISHED_NAME).unlink(missing_ok=True)
        store = open_store(out_dir / STORE_NAME, identity, log)
        life = _Life(job, settings, store, log, started)
        try:
            result = life.run(source, layout, identity)
        finally:
            store.close()
            # Nothing was asked: the corrected input needs no fresh start. A dry run's own
            # store goes too (it holds the whole input); one it found stays, for the resume.
            dry = settings.dry_run and not life.resumed and not settings.keep_progress
            if life.release or dry:
                ProgressStore.remove(store.path)
        if life.clean and not settings.keep_progress:
            # Nothing is left to ask: the store (the input's keys, and its values) goes.
            ProgressStore.remove(out_dir / STORE_NAME)
            mark_finished(out_dir, identity, result.summary, result.outputs)
        return result


class _Life:
    """One run's state between the phases."""

    def __init__(
        self,
        job: Job,
        settings: BatchSettings,
        store: ProgressStore,
        log: Log,
        started: dt.datetime,
    ) -> None:
        self.job, self.settings, self.store, self.log = job, settings, store, log
        self.started = started
        self.figures: dict[str, Any] = {}
        self.resumed = False
        self.logged = False
        self.clean = False  # done, and the job needs no store for a rerun
        self.release = False
        self.layout: Layout | None = None
        self.plan: Plan | None = None
        self.lent: list[dt.date] = []  # nights whose stores lent answers (batch.run.carry)

    def run(self, source: InputFile, layout: Layout, identity: dict[str, Any]) -> BatchResult:
        self.layout = layout
        try:
            try:
                self.resumed = claim(self.store, identity)
                if self.resumed:
                    done = self.store.counts()["done"]
                    self.log.info("resuming", done=done, folder=str(self.settings.out_dir))
                try:
                    read = ingest(
                        self.store, source, layout, self.job, self.settings.chunk_rows, log=self.log
                    )
                    check_input(self.store, source, layout, read=read)
                except InputError:
                    counts = self.store.counts()
                    self.release = counts["done"] + counts["error"] == 0  # nothing asked yet
                    raise
                self._plan()
                if (again := self._published_before()) is not None:
                    return again
                if self.settings.dry_run:
                    return self._finish(state="dry_run")
                stop = self._ask()
                if stop is not None and not isinstance(stop, PausedError):
                    raise stop
                return self._finish(state="done" if stop is None else "paused", stop=stop)
            except KeyboardInterrupt as interrupt:  # a signal outside the asking phase
                signum = interrupt.args[0] if interrupt.args else signal.SIGINT
                raise Interrupted(stopped_by(signum), signum) from None
        except RunError as exc:
            if isinstance(exc, AbortError | Interrupted | ConfigurationError | StoreError):
                self._leave_stop_summary(exc)
            elif not isinstance(exc, UsageError | PausedError):
                self._log_run(self._summary(state_of(exc), exc, None))
            raise

    def _plan(self) -> None:
        """Under max_age, carry the young earlier answers and rank the rest (batch.run.carry)."""
        settings = self.settings
        root, day, max_age = settings.dataset_root, settings.run_date, settings.max_age
        if max_age is None or day is None:
            return
        keep = not settings.dry_run
        earlier: Iterable[Earlier] = self.job.earlier()
        if root is not None:
            first, identity = self.job.tables()[0].name, self.job.identity()
            self.lent = lenders(
                self.store, root, day, first, job_identity=identity, log=self.log, keep=keep
            )
            earlier = itertools.chain(earlier, lent_answers(root, self.lent, self.log))
        self.plan = plan_night(self.store, earlier, day, max_age, self.log, keep=keep)

    def _leave_stop_summary(self, exc: RunError) -> None:
        """summary.json (and the run-log row) for a run that stopped early."""
        logged = leave_stop_summary(
            self.job,
            self.settings,
            self.log,
            lambda: self._summary(state_of(exc), exc, None),
            log_run=not self.logged,
        )
        self.logged = self.logged or logged

    def _ask(self) -> RunError | None:
        counts = self.store.counts()
        open_items = counts["pending"] + counts["error"]
        if open_items == 0:
            return None
        forget_published(self.store)
        self.log.info("asking", items=open_items)
        asking = ask_all(self.job, self.settings, self.store, self.log, open_items)
        asked = run_async(asking, self.settings.asking_tuning)
        self.figures = asked.figures
        return asked.stop

    def _finish(self, state: str, stop: RunError | None = None) -> BatchResult:
        """Export (not on a pause or dry run), account, publish; raise the pause after."""
        settings, store = self.settings, self.store
        if state == "dry_run" and store.get_meta(KEPT_FOR_ERRORS):  # the night stays as published
            return BatchResult(self._summary(state, None, None), ())
        exported = Exported()
        root, day = settings.dataset_root, settings.run_date
        place = (
            placer(root, day, settings.file_mode)
            if root is not None and day is not None and state == "done"
            else None
        )
        into_dataset = place is not None
        with OutputSet(settings.out_dir, place, settings.file_mode) as outputs:
            if state == "done":
                exported = export_tables(
                    store, self.job, outputs, settings.file_format, settings.display_zone
                )
                extra = self.job.finish(exported.paths, outputs.aside)
            else:
                extra = {}
            write_rejects(outputs.aside("rejects.csv"), store, self.job)
            if state == "done":  # before that, the samples stay in the folder's .timeline.jsonl
                self._write_timeline(outputs)
            summary = self._summary(state, stop, exported, extra)
            self.clean = state == "done" and not self.job.keeps_progress(summary)
            if state == "done" and not summary["accounting_ok"]:
                raise AccountingError(self._mismatch(exported))
            write_json(outputs.aside("summary.json"), summary)
            published = tuple(outputs.publish())
        if state == "done" and not self.clean:  # kept for its failures: a rerun asks them
            store.set_meta(KEPT_FOR_ERRORS, "1")
        if stop is not None:
            self._log_run(summary)
            raise stop
        if into_dataset:
            assert root is not None
            with deferred():  # a signal from here on is the job's to tell (its sinks')
                remember(self.store, published)  # a rerun after a kill finishes this attempt
                self._log_run(summary, current=True)  # last, and the night's current run
                retire(root, self.lent, self.log, kept_before=day)
                self.log.info("published", dataset=str(root))
                after_publish(self.job, root, published)
                forget_published(self.store)  # done: a rerun (--keep-progress) publishes anew
        elif state == "done":
            remove_stale(settings.out_dir, self.job, published)
        return BatchResult(summary, published)

    def _published_before(self) -> BatchResult | None:
        """A night this store published, its sinks cut short: finished, not made again."""
        root, published = self.settings.dataset_root, published_files(self.store)
        if root is None or published is None or self.settings.dry_run:
            return None
        self.logged = True  # its row is the earlier run's: the job amends it, a failure too
        summary = finish_published(self.job, root, published, self.log)
        forget_published(self.store)
        self.clean = not self.job.keeps_progress(summary)
        return BatchResult(summary, published)

    def _write_timeline(self, outputs: OutputSet) -> None:
        samples = self.settings.out_dir / TIMELINE_NAME
        path = outputs.aside(f"{TIMELINE_TABLE}.parquet")
        if not write_timeline(samples, path, self.job.timeline_schema()):
            outputs.discard_last()

    def _log_run(self, summary: Mapping[str, Any], current: bool = False) -> None:
        """One row per run: a failure after the run was logged (a sink's) is not logged again."""
        if self.settings.dataset_root is not None and not self.logged:
            self.logged = True
            row, schema = self.job.run_log(summary)
            root, mode = self.settings.dataset_root, self.settings.file_mode
            append_run(root, row, schema, mode, current=current)

    def _summary(
        self,
        state: str,
        stop: BaseException | None,
        exported: Exported | None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        counts = self.store.counts()
        rows = int(self.store.get_meta("rows_total") or 0)
        exported = exported or Exported()
        # The first table has a row per item: every item must be in it when the run is done.
        written_all = state != "done" or self._first_table_rows(exported) == counts["items"]
        tally = Tally(
            state=state,
            reason=str(stop) if stop is not None else None,
            rows=rows,
            rejected=counts["rejected"],
            items=counts["items"],
            unanswered=counts["pending"],
            open_items=counts["pending"] + counts["error"],
            counters=exported.counters,
            failures=exported.failures,
            written=exported.written,
            figures=self.figures,
            resumed=self.resumed,
            accounting_ok=rows == counts["items"] + counts["rejected"] and written_all,
            started_at=self.started,
            finished_at=_now(),
            extra={
                **(extra or {}),
                "stopped_by": stop,
                "input_sha256": json.loads(self.store.get_meta("identity") or "{}").get(
                    "input_sha256"
                ),
                "read": how_read(self.layout, self.store),
                "carried": counts["carried"],
                "asked": counts["items"] - counts["pending"] - counts["carried"],
                **({"plan": self.plan.as_dict()} if self.plan is not None else {}),
            },
        )
        return self.job.summary(tally)

    def _first_table_rows(self, exported: Exported) -> int:
        first = self.job.tables()[0].name
        return exported.written.get(first, -1)

    def _mismatch(self, exported: Exported) -> str:
        counts = self.store.counts()
        rows = self.store.get_meta("rows_total")
        written = self._first_table_rows(exported)
        return (
            f"accounting mismatch: {rows} rows read, {counts['items']} items "
            f"+ {counts['rejected']} rejected, {written} written; outputs not published"
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
