"""The asking phase: the job's asker answers every open item under bounded workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from batch.contract import Asker, Job
from batch.errors import RunError
from batch.http import ASKING
from batch.log import Log
from batch.run.progress_line import ProgressReport
from batch.run.runner import Outcome, Runner
from batch.run.timeline import TIMELINE_NAME, Timeline
from batch.settings import BatchSettings
from batch.store import OpenItem, ProgressStore


@dataclass(frozen=True, slots=True)
class Asked:
    """What the asking phase came to: the asker's figures, and why it stopped early, if so."""

    figures: dict[str, Any]
    stop: RunError | None


async def ask_all(
    job: Job, settings: BatchSettings, store: ProgressStore, log: Log, open_items: int
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
            ASKING.set(open_item.seq)  # the gate notes which connection answered which item
            answer = await asker.ask(open_item.payload)
            verdict = answer.verdict
            state = "done" if verdict.final else "error"
            return Outcome(state, answer.result, verdict)

        runner = Runner(
            store,
            answer,
            workers=settings.workers,
            drain_timeout=settings.drain_timeout,
            on_outcome=lambda outcome: progress.update(outcome.label),
            stall_timeout=settings.stall_timeout,
            idle=asker.waiting,
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
                await ask_again(asker, store, answer, settings.workers, log)
        except RunError as exc:  # the summary still needs the asker's figures
            stop = exc
            ask_again_later(asker, store, log)
        finally:
            progress.close()
    figures = asker.figures()
    scalars = {k: v for k, v in figures.items() if isinstance(v, int | float | str)}
    log.info("asked", items=runner.finished, **scalars)
    return Asked(figures, stop)


def _answered_before(job: Job, store: ProgressStore) -> Counter[str]:
    """The labels of the final answers the store already holds (a resume's, carried ones).

    One scan of the store, and only when it holds any: the progress line then starts
    where the run stands, and its last frame equals the summary. An answer without a
    verdict (carried, or kept by an older version) is judged here and its verdict kept,
    so the export does not judge it again.
    """
    found: Counter[str] = Counter()
    if store.counts()["done"] == 0:
        return found
    for batch in store.iter_items():
        judged = []
        for stored in batch:
            if stored.state == "done" and stored.result is not None:
                verdict = stored.verdict
                if verdict is None:
                    verdict = job.judge(stored.result)
                    judged.append((stored.seq, stored.state, stored.result, verdict))
                found[Outcome(stored.state, stored.result, verdict).label] += 1
        if judged:
            store.record(judged)
    return found


def _suspects(asker: Asker, store: ProgressStore, log: Log) -> list[OpenItem]:
    """Items whose answer may be another's (the asker's `suspects`), reopened."""
    seqs = sorted(seq for seq in asker.suspects() if isinstance(seq, int))  # ASKING holds seqs
    if not seqs:
        return []
    log.warning(
        "answers_misplaced",
        items=len(seqs),
        reason="the server sent answers nobody asked for on reused connections; the items "
        "answered on those connections may hold another item's answer and are asked again",
    )
    return store.reopen(seqs)


async def ask_again(
    asker: Asker,
    store: ProgressStore,
    answer: Callable[[OpenItem], Awaitable[Outcome]],
    workers: int,
    log: Log,
) -> None:
    """Ask again, in this run, every item whose answer may be another's.

    The transport reuses no connection once it has seen an unasked answer, so the new
    answers cannot be misplaced; an item not asked again stays open for the resume.
    """
    slots = asyncio.Semaphore(workers)

    async def one(item: OpenItem) -> None:
        async with slots:
            outcome = await answer(item)
            store.record([(item.seq, *outcome.stored)])

    await asyncio.gather(*(one(item) for item in _suspects(asker, store, log)))


def ask_again_later(asker: Asker, store: ProgressStore, log: Log) -> None:
    """A run that stops keeps no answer that may be another's: the resume asks them."""
    _suspects(asker, store, log)
