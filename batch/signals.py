"""SIGINT and SIGTERM held back while a step must not be cut in two.

Some steps break when Python raises KeyboardInterrupt inside them: a native extension's
import (DuckDB's aborts the process, exit 134, with no summary), or a database load whose
driver swallows the interrupt and carries on. Inside `held()` a stop signal is only noted;
the step ends whole and the caller decides what the signal means once it has.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(slots=True)
class Held:
    """The first stop signal that arrived while held, if any."""

    signum: int | None = None

    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


_holding: list[Held] = []


@contextmanager
def held() -> Iterator[Held]:
    """Note SIGINT and SIGTERM instead of raising; the previous handlers come back after.

    Held inside a held step, the inner step sees what the outer one noted already."""
    if _holding:
        yield _holding[-1]
        return
    caught = Held()
    if threading.current_thread() is not threading.main_thread():
        yield caught  # only the main thread may set handlers; the others get no signal
        return

    def note(signum: int, _: Any) -> None:
        if caught.signum is None:
            caught.signum = signum

    previous = {signum: signal.signal(signum, note) for signum in STOP_SIGNALS}
    _holding.append(caught)
    try:
        yield caught
    finally:
        _holding.pop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold stop signals over the block, then raise KeyboardInterrupt(signum) for one."""
    with held() as caught:
        yield
    if caught.signum is not None:
        raise KeyboardInterrupt(caught.signum)
