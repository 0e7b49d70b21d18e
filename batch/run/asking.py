"""The asking phase: the job's asker answers every open item under bounded workers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from batch.contract import Job
from batch.errors import RunError
from batch.log import Log
from batch.run.progress_line import ProgressReport
from batch.run.runner import Outcome, Runner
from batch.run.timeline import TIMELINE_NAME, Timeline
from batch.settings import BatchSettings
from batch.store.items import OpenItem
from batch.store.progress_store import ProgressStore


@dataclass(frozen=True, slots=True)
class Asked:
    """What the asking phase came to: the asker's figures, and why it stopped early, if so."""

    figures: dict[str, Any]
    stop: RunError | None


async def ask_all(
    job: Job[Any, Any], settings: BatchSettings, store: ProgressStore, log: Log, open_items: int
) -> Asked:
    """Answer every open item; a `RunError` that stops the run is returned, not raised."""
    async with job.asker(log) as asker:
        progress = ProgressReport(
            open_items,
            tty=settings.progress_tty,
            log=log,
            interval=settings.progress_interval,
            extra=asker.figures,
            unit=job.unit,
            before=_answered_before(job, store),
        )

        async def answer(open_item: OpenItem) -> Outcome:
            record = await asker.ask(job.decode_item(open_item.payload))
            state = "done" if job.is_final(record) else "error"
            return Outcome(state, job.encode_record(record), _label(job, record, state))

        runner = Runner(
            store,
            answer,
            workers=settings.workers,
            drain_timeout=settings.drain_timeout,
            on_outcome=lambda outcome: progress.update(outcome.label),
            stall_timeout=settings.stall_timeout,
        )
        timeline = Timeline(
            settings.out_dir / TIMELINE_NAME,
            lambda: {
                "items_done": progress.done,
                **{f"items_{label}": n for label, n in progress.by_state.items()},
                **asker.figures(),
            },
        )
        stop = None
        try:
            async with timeline:
                await runner.run()
        except RunError as exc:  # the summary still needs the asker's figures
            stop = exc
        finally:
            progress.close()
    figures = asker.figures()
    scalars = {k: v for k, v in figures.items() if isinstance(v, int | float | str)}
    log.info("asked", items=runner.finished, **scalars)
    return Asked(figures, stop)


def _label(job: Job[Any, Any], record: Any, state: str) -> str:
    """What a progress line counts a record as: its first counter (the summary's word)."""
    return next(iter(job.counters(record)), state)


def _answered_before(job: Job[Any, Any], store: ProgressStore) -> Counter[str]:
    """The labels of the final answers the store already holds (a resume's, carried ones).

    One scan of the store, and only when it holds any: the progress line then starts
    where the run stands, and its last frame equals the summary.
    """
    found: Counter[str] = Counter()
    if store.counts()["done"] == 0:
        return found
    for batch in store.iter_items():
        for stored in batch:
            if stored.state == "done" and stored.result is not None:
                found[_label(job, job.decode_record(stored.result), "done")] += 1
    return found
