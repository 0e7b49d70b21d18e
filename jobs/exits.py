"""The contract's exit codes, decided here and nowhere in the engine."""

from __future__ import annotations

from batch import (
    AbortError,
    AccountingError,
    Interrupted,
    PausedError,
    RunError,
    StoreError,
    UsageError,
)

DONE = 0
TOO_MANY_ERRORS = 1
USAGE = 2
ABORTED = 3
PAUSED = 4
SINK_FAILED = 5
INTERNAL = 70

# Most specific first: the first class that matches decides.
_BY_ERROR: tuple[tuple[type[RunError], int], ...] = (
    (UsageError, USAGE),
    (AbortError, ABORTED),
    (PausedError, PAUSED),
    (StoreError, INTERNAL),
    (AccountingError, INTERNAL),
)


def exit_code_for(error: RunError) -> int:
    """The exit code a run that ended with `error` gives."""
    if isinstance(error, Interrupted):
        return 128 + error.signum
    code = getattr(error, "exit_code", None)  # a job error may carry its own (a sink's 5)
    if isinstance(code, int):
        return code
    for kind, exit_code in _BY_ERROR:
        if isinstance(error, kind):
            return exit_code
    return INTERNAL
