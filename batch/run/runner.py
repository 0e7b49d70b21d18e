"""The async runner: bounded workers answer the store's open items until none are left."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, TypeVar

from batch.contract import Verdict
from batch.errors import (
    Interrupted,
    PausedError,
    RunError,
    Stalled,
    StoreError,
    describe_store_error,
)
from batch.store import OpenItem, ProgressStore


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one item ended as: `done` (final) or `error` (asked again on resume).

    `result` is the answer as the store keeps it; `verdict`, the job's judgement of it,
    is kept beside it so that the export need not judge it again.
    """

    state: str
    result: dict[str, Any]
    verdict: Verdict | None = None

    @property
    def label(self) -> str:
        """What a progress bar counts: the verdict's first counter, or the state."""
        counters = self.verdict.counters if self.verdict is not None else ()
        return counters[0] if counters else self.state

    @property
    def stored(self) -> tuple[str, dict[str, Any], Verdict | None]:
        return (self.state, self.result, self.verdict)


Handler = Callable[[OpenItem], Awaitable[Outcome]]
T = TypeVar("T")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_IDLE_LOOK = 0.1  # seconds between looks at whether a stop may cancel at once


def run_async(
    main: Coroutine[Any, Any, T], tuning: Callable[[], AbstractContextManager[object]]
) -> T:
    """Run the asking phase on uvloop, inside the program's interpreter `tuning` (its
    entry's to choose: `BatchSettings.asking_tuning`)."""
    with tuning(), asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
        return runner.run(main)


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed: measured 4% cheaper per request than asyncio's loop."""
    if find_spec("uvloop") is None:  # pragma: no cover - uvloop is a dependency on Linux
        return None
    import uvloop  # noqa: PLC0415

    return uvloop.new_event_loop


class Runner:
    """Feeds open items to `workers` tasks through a bounded queue and stores each outcome.

    A signal stops the feed; items in flight get `drain_timeout` seconds to finish,
    then are cancelled and stay open for the next run; while `idle()` says they only
    wait (the server is down), they are cancelled at once. A `PausedError` from the
    handler drains the same way; any other `RunError` cancels at once.

    Answers are group-committed: a worker hands its answer to the committer and
    waits for the commit before it takes another item, so one transaction carries
    every answer that arrived meanwhile, and a kill loses at most `workers` items.
    Every store call runs on one thread of its own: a commit (or a WAL checkpoint's
    fsync) must never stall the event loop, or requests paced 2 ms apart leave in bursts.
    """

    def __init__(
        self,
        store: ProgressStore,
        handler: Handler,
        workers: int,
        drain_timeout: float,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        stall_timeout: float | None = None,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        self._store = store
        self._handler = handler
        self._workers = workers
        self._queue: asyncio.Queue[OpenItem | None] = asyncio.Queue(maxsize=workers * 2)
        self._drain_timeout = drain_timeout
        self._stall_timeout = stall_timeout
        self._idle = idle
        self._on_outcome = on_outcome
        self._stopping = asyncio.Event()
        self._fatal: BaseException | None = None
        self._signal: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._uncommitted: list[tuple[int, Outcome, asyncio.Future[None]]] = []
        self._store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._answers_waiting = asyncio.Event()
        self.finished = 0

    def stop(self, signum: int) -> None:
        """Take no new items; let those in flight finish within the drain timeout."""
        if self._signal is None:
            self._signal = signum
        self._stopping.set()

    async def run(self) -> None:
        """Answer every open item, or raise why the run stopped early."""
        loop = asyncio.get_running_loop()
        previous = {signum: signal.getsignal(signum) for signum in _STOP_SIGNALS}
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, self.stop, signum)
        try:
            producer = asyncio.create_task(self._produce())
            committer = asyncio.create_task(self._commit_forever())
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
            helpers = [
                producer,
                committer,
                asyncio.create_task(self._cancel_after_drain()),
                asyncio.create_task(self._watch_for_stalls()),
            ]
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        finally:
            self._store_thread.shutdown(wait=True)  # a commit under way completes
            if not isinstance(self._fatal, StoreError):
                self._finish(self._take_uncommitted())  # answers of cancelled workers still count
            for signum, handler in previous.items():
                loop.remove_signal_handler(signum)
                # asyncio resets to the default action; give back the caller's handler.
                signal.signal(signum, handler)
        if self._fatal is not None:
            raise self._fatal
        if self._signal is not None:
            name = signal.Signals(self._signal).name
            raise Interrupted(
                f"stopped by {name}; progress is saved: run the same command again to resume",
                self._signal,
            )

    async def _produce(self) -> None:
        try:
            await self._feed()
        except Exception as exc:  # the store failed to read: nothing more can be asked
            self._fail(exc, cancel_others=True)

    async def _feed(self) -> None:
        last = (-1, -1, -1)  # before every place: ranks, days and seqs are never negative
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            page = await loop.run_in_executor(
                self._store_thread, self._store.open_items, last, self._workers * 4
            )
            if not page:
                break
            for item in page:
                await self._queue.put(item)
                if self._stopping.is_set():
                    break
            last = page[-1].place
        for _ in range(self._workers):
            await self._queue.put(None)

    async def _work(self) -> None:
        while not self._stopping.is_set():
            item = await self._queue.get()
            if item is None or self._stopping.is_set():
                return
            try:
                outcome = await self._handler(item)
            except PausedError as exc:
                self._fail(exc, cancel_others=False)
                return
            except RunError as exc:
                self._fail(exc, cancel_others=True)
                return
            except Exception as exc:  # a bug: stop everything, keep what is stored
                self._fail(exc, cancel_others=True)
                return
            committed = asyncio.get_running_loop().create_future()
            self._uncommitted.append((item.seq, outcome, committed))
            self._answers_waiting.set()
            try:
                await committed
            except StoreError:
                return  # the committer has stopped the run

    async def _commit_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._answers_waiting.wait()
            self._answers_waiting.clear()
            await asyncio.sleep(0)  # one loop turn: answers arriving now join this commit
            batch = self._take_uncommitted()
            if batch:
                rows = [(seq, *outcome.stored) for seq, outcome, _ in batch]
                try:
                    await loop.run_in_executor(self._store_thread, self._store.record, rows)
                except Exception as exc:  # a full disk, a lock held too long, a corrupt file
                    self._store_failed(exc, batch)
                    return
                self._after_commit(batch)

    def _store_failed(
        self, exc: Exception, batch: list[tuple[int, Outcome, asyncio.Future[None]]]
    ) -> None:
        """Nothing more can be saved: every worker waiting on a commit is told, and all stop."""
        failure = StoreError(
            f"the progress store could not save answers: {describe_store_error(exc)}"
        )
        for _, _, committed in batch:
            if not committed.done():
                committed.set_exception(failure)
        self._fail(failure, cancel_others=True)

    def _take_uncommitted(self) -> list[tuple[int, Outcome, asyncio.Future[None]]]:
        batch, self._uncommitted = self._uncommitted, []
        return batch

    def _finish(self, batch: list[tuple[int, Outcome, asyncio.Future[None]]]) -> None:
        """Commit on the calling thread: only once the run's tasks are gone."""
        if batch:
            self._store.record([(seq, *outcome.stored) for seq, outcome, _ in batch])
            self._after_commit(batch)

    def _after_commit(self, batch: list[tuple[int, Outcome, asyncio.Future[None]]]) -> None:
        for _, outcome, committed in batch:
            self.finished += 1
            if self._on_outcome is not None:
                self._on_outcome(outcome)
            if not committed.done():
                committed.set_result(None)

    def _fail(self, exc: BaseException, *, cancel_others: bool) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._stopping.set()
        if cancel_others:
            current = asyncio.current_task()
            for task in self._tasks:
                if task is not current:
                    task.cancel()

    async def _watch_for_stalls(self) -> None:
        """End a run in which nothing has finished for `stall_timeout` s: a hang must alert."""
        if self._stall_timeout is None:
            return
        last_seen, quiet_since = -1, asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(min(self._stall_timeout / 4, 5.0))
            now = asyncio.get_running_loop().time()
            if self.finished != last_seen:
                last_seen, quiet_since = self.finished, now
            elif now - quiet_since > self._stall_timeout:
                self._fail(
                    Stalled(f"no item finished for {now - quiet_since:.0f} s; stopping the run"),
                    cancel_others=True,
                )
                return

    async def _cancel_after_drain(self) -> None:
        await self._stopping.wait()
        ticks = max(1, round(self._drain_timeout / _IDLE_LOOK))
        for _ in range(ticks):
            if self._idle is not None and self._idle():
                break  # nothing in flight can finish before the server is back
            await asyncio.sleep(self._drain_timeout / ticks)
        for task in self._tasks:
            task.cancel()
