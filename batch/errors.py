"""Every error the batch engine and the job raise on purpose, in one tree.

    BatchError
    ├── RunError ─ ends the whole run; the CLI maps `exit_code` and prints one line
    │   ├── UsageError (2) ─ bad flags, configuration, or an input that cannot be read
    │   │   ├── InputError ─ unreadable file, unknown encoding, missing column
    │   │   ├── ResumeMismatch ─ DIR holds the progress of another input
    │   │   └── DirLocked ─ another live run holds DIR
    │   ├── AbortError (3) ─ going on would only burn the quota
    │   │   ├── CredentialsRejected ─ 401/403: the key was refused
    │   │   └── FailureStreak ─ too many failed requests in a row
    │   ├── PausedError (4) ─ the daily cap fell to the reserve; resume after the reset
    │   ├── Interrupted (128+signal) ─ SIGINT/SIGTERM; progress is saved
    │   └── AccountingError (70) ─ rows read != reconciled + rejected: a bug, never hidden
    └── ItemFailure ─ one request for one item failed; the run goes on
        ├── TransientFailure ─ RETRIED with backoff (or the server's Retry-After)
        │   ├── RateLimited ─ 429: slows the whole run down, honours Retry-After
        │   ├── ServerFailure ─ 5xx without an answer (503's Retry-After is honoured)
        │   ├── BadBody ─ an HTML page, truncated or non-JSON body
        │   ├── RequestTimeout ─ no answer within the request timeout (batch/http.py)
        │   └── ConnectionFailure ─ refused, reset, closed mid-answer, not HTTP (batch/http.py)
        └── PermanentFailure ─ NOT retried: the item ends in `error` with this reason

Messages never carry an item's key or an API key: callers mask before raising.
"""

from __future__ import annotations


class BatchError(Exception):
    """Base of every error this project raises on purpose."""


class RunError(BatchError):
    """An error that ends the run with `exit_code`."""

    exit_code = 1


class UsageError(RunError):
    """Bad usage, configuration or input: nothing was asked."""

    exit_code = 2


class InputError(UsageError):
    """The input cannot be read as a table with the needed columns."""


class ResumeMismatch(UsageError):
    """The output folder holds progress made from a different input."""


class DirLocked(UsageError):
    """Another live run holds the output folder."""


class AbortError(RunError):
    """The API keeps refusing or failing; asking on would only burn the quota."""

    exit_code = 3


class CredentialsRejected(AbortError):
    """The gateway refused the API key (401/403)."""


class FailureStreak(AbortError):
    """Too many requests in a row failed."""


class PausedError(RunError):
    """The daily cap reached the reserve; the rest waits for the next resume."""

    exit_code = 4


class Interrupted(RunError):
    """A signal asked the run to stop; progress is saved."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class AccountingError(RunError):
    """Rows were lost or invented; this is a bug and must never pass silently."""

    exit_code = 70


class ItemFailure(BatchError):
    """One request for one item failed; `reason` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientFailure(ItemFailure):
    """A failure worth another attempt; `retry_after` is the server's wish, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class RateLimited(TransientFailure):
    """429: the key's quota is spent for now; every request must slow down, not just this one."""


class ServerFailure(TransientFailure):
    """A 5xx that carries no answer."""


class BadBody(TransientFailure):
    """The body is an HTML page, truncated, or not JSON at all."""


class RequestTimeout(TransientFailure):
    """No answer within the request timeout."""


class ConnectionFailure(TransientFailure):
    """The connection was refused, reset or closed mid-answer, or the answer was not HTTP."""


class PermanentFailure(ItemFailure):
    """A failure that another attempt would only repeat."""
