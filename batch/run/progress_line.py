"""Progress for people: a live bar on a terminal, a log line every so often elsewhere.

On a terminal (tqdm) it is two lines that fit the terminal's width, 80 columns or more:

     37%|████████████▍                     | 370/992 cust [00:04<00:07, 88.1 cust/s]
    linked 201 · non_member 90 · no_linked_account 79 · error 0 · 612 req · 9.8 req/s

The counts are the whole run's, answers from before a resume included, so the last frame
shows what the summary says; it is drawn once more as the bar closes.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from batch.log import Log

MAX_COLUMNS = 140
BAR = "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}]"


def status_text(counts: Mapping[str, int], figures: Mapping[str, Any], width: int) -> str:
    """`label n · label n · …`, then the request figures that still fit in `width`."""
    text = " · ".join(f"{label} {n:,}" for label, n in counts.items())
    if len(text) > width:  # very large counts: separators go first, then the labels' tails
        text = " ".join(f"{label[:10]} {n:,}" for label, n in counts.items())
    for extra in _figures(figures):
        if len(text) + 3 + len(extra) <= width:
            text += " · " + extra
    return text[:width]


def _figures(figures: Mapping[str, Any]) -> list[str]:
    shown = []
    if isinstance(figures.get("requests"), int):
        shown.append(f"{figures['requests']:,} req")
    if figures.get("retries"):
        shown.append(f"{figures['retries']:,} retries")
    if figures.get("http_429"):
        shown.append(f"{figures['http_429']:,} × 429")
    if isinstance(figures.get("req_per_s"), int | float):
        shown.append(f"{figures['req_per_s']} req/s")
    return shown


class ProgressReport:
    """Counts finished items by state; shows them as a tqdm bar or as periodic log lines.

    `before` holds the labels of answers the run already had (a resume's, a carried
    night's): the line shows the whole run, this session's `done` and `by_state` do not.
    """

    def __init__(
        self,
        total: int,
        *,
        tty: bool,
        log: Log,
        interval: float = 30.0,
        extra: Callable[[], dict[str, Any]] | None = None,
        unit: str = "it",
        before: Mapping[str, int] | None = None,
    ) -> None:
        self.total = total
        self.done = 0
        self.by_state: Counter[str] = Counter()
        self._before = Counter(before or {})
        self._log = log
        self._interval = interval
        self._extra = extra or dict
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Any = None
        self._status: Any = None
        if tty and total:
            from tqdm import tqdm  # noqa: PLC0415  (lazy: keeps --help fast)

            # A bare pty reports 0x0, and tqdm then hides its bar; shutil falls back to 80x24.
            size = shutil.get_terminal_size()
            self._width = min(size.columns, MAX_COLUMNS)
            already = sum(self._before.values())
            self._bar = tqdm(
                total=total + already,
                initial=already,
                unit=unit,
                ncols=self._width,
                nrows=size.lines,
                bar_format=BAR,
                smoothing=0.05,
            )
            self._status = tqdm(
                total=0, position=1, bar_format="{desc}", ncols=self._width, nrows=size.lines
            )
            self._draw_status()

    def counts(self) -> dict[str, int]:
        """The whole run's counts by label, as the summary gives them (in a steady order)."""
        found = self._before + self.by_state
        return {label: found[label] for label in sorted(found)}

    def update(self, state: str) -> None:
        self.done += 1
        self.by_state[state] += 1
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(1)
            if now - self._last_line >= 0.5:
                self._draw_status()
                self._last_line = now
        elif now - self._last_line >= self._interval:
            self._last_line = now
            self._log.info("progress", **self._fields(now))

    def close(self) -> None:
        if self._bar is not None:
            self._draw_status()  # the last frame: every answer counted
            self._bar.refresh()
            self._bar.close()
            self._status.close()

    def _draw_status(self) -> None:
        text = status_text(self.counts(), self._extra(), self._width - 1)
        self._status.set_description_str(text, refresh=True)

    def _fields(self, now: float) -> dict[str, Any]:
        elapsed = max(now - self._started, 1e-9)
        per_s = self.done / elapsed
        left = self.total - self.done
        return {
            "done": self.done,
            "total": self.total,
            "per_s": round(per_s, 1),
            "eta_s": round(left / per_s) if per_s else None,
            **self.counts(),
            **self._extra(),
        }
