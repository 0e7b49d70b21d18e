"""Interpreter-wide tuning, all of it, applied by the command line and never by the engine.

Each setting reaches past the job into the whole process (the collector, the GIL, the
import system), so only the program's entry may decide it; a library that embeds the
engine keeps its interpreter as it was.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator


def skip_pandas_probe() -> None:
    """Let pyarrow's first array find no pandas, so the process need not import it.

    pyarrow imports pandas on its first array only to ask whether the input is a
    pandas object, which the job never hands it: 0.3 s of every run (docs/benchmarks.md).
    With pandas hidden during that one probe, pyarrow stops asking; `to_pandas()` and
    the like still import pandas when they are called.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa  # noqa: PLC0415  (lazy: --help never imports it)

    hide = _HidePandas()
    sys.meta_path.insert(0, hide)
    try:
        pa.array([], type=pa.null())
    finally:
        sys.meta_path.remove(hide)


class _HidePandas:
    """An import finder that refuses pandas (`sys.meta_path` needs no base class)."""

    def find_spec(self, name: str, *_: object) -> None:
        if name == "pandas":
            raise ImportError(name="pandas")


@contextlib.contextmanager
def steady_loop() -> Iterator[None]:
    """While asking: the GC kept off what lives to the end, and a short GIL switch interval.

    Everything alive by now lives until the end. Frozen out of the collector's reach,
    it no longer makes a full collection stall the loop for tens of ms between taking
    a rate slot and sending, which would turn paced requests into bursts.
    """
    gc.collect()
    gc.freeze()
    # The store's thread holds the GIL while it prepares a commit; by default the loop
    # may wait 5 ms for it, as long as the whole jitter margin of the pacing.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        yield
    finally:
        sys.setswitchinterval(switch_interval)
        gc.unfreeze()  # frozen objects are never freed, not even at exit
