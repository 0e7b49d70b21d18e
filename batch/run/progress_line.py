"""Progress for people: a live bar on a terminal, a log line every so often elsewhere."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from batch.log import Log


class ProgressReport:
    """Counts finished items by state; shows them as a tqdm bar or as periodic log lines."""

    def __init__(
        self,
        total: int,
        *,
        tty: bool,
        log: Log,
        interval: float = 30.0,
        extra: Callable[[], dict[str, Any]] | None = None,
        unit: str = "it",
    ) -> None:
        self.total = total
        self.done = 0
        self.by_state: Counter[str] = Counter()
        self._log = log
        self._interval = interval
        self._extra = extra or dict
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Any = None
        if tty and total:
            from tqdm import tqdm  # noqa: PLC0415  (lazy: keeps --help fast)

            # A bare pty reports 0x0, and tqdm then hides its bar; shutil falls back to 80x24.
            size = shutil.get_terminal_size()
            self._bar = tqdm(
                total=total,
                unit=unit,
                ncols=min(size.columns, 140),
                nrows=size.lines,
                smoothing=0.05,
            )

    def update(self, state: str) -> None:
        self.done += 1
        self.by_state[state] += 1
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(1)
            if now - self._last_line >= 0.5:
                self._bar.set_postfix(self._fields(now, with_eta=False), refresh=False)
                self._last_line = now
        elif now - self._last_line >= self._interval:
            self._last_line = now
            self._log.info("progress", **self._fields(now, with_eta=True))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _fields(self, now: float, *, with_eta: bool) -> dict[str, Any]:
        elapsed = max(now - self._started, 1e-9)
        per_s = self.done / elapsed
        fields: dict[str, Any] = {**self.by_state, **self._extra()}
        if with_eta:
            left = self.total - self.done
            fields = {
                "done": self.done,
                "total": self.total,
                "per_s": round(per_s, 1),
                "eta_s": round(left / per_s) if per_s else None,
                **fields,
            }
        return fields
