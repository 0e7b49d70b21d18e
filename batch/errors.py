"""Every error the batch engine raises on purpose, in one tree, named by what happened.

    BatchError
    ├── RunError ─ ends the whole run; only the CLI turns it into an exit code
    │   ├── UsageError ─ bad flags or settings, or an input that cannot be read
    │   │   ├── InputError ─ unreadable file, unknown encoding, missing column
    │   │   ├── ResumeMismatch ─ the folder holds the progress of another input
    │   │   ├── DirLocked ─ another live run holds the folder
    │   │   └── ConfigurationError ─ the network setup cannot work; fix it, then run again
    │   │       ├── CertificateError ─ the server's TLS certificate failed verification
    │   │       ├── NameResolutionError ─ the host's name does not resolve
    │   │       └── ProxyRefused ─ the egress proxy refused us (407, 403)
    │   ├── AbortError ─ going on would only burn the quota
    │   │   ├── CredentialsRejected ─ the server refused our credentials
    │   │   ├── OutageTooLong ─ the server stayed down past the allowed outage
    │   │   ├── UnusableAnswers ─ too many answers could not be used (a schema change?)
    │   │   └── Stalled ─ nothing finished for too long: a hang, ended by the watchdog
    │   ├── PausedError ─ the daily cap fell to the reserve; resume after the reset
    │   ├── Interrupted ─ SIGINT/SIGTERM; progress is saved
    │   ├── StoreError ─ the progress store failed; nothing more can be saved
    │   └── AccountingError ─ rows read != answered + rejected: a bug, never hidden
    └── RequestError ─ one request got no usable answer; the gate decides what follows
        ├── TransportError ─ no whole HTTP answer came back
        │   ├── RequestTimeout
        │   │   ├── ConnectTimeout ─ no connection within the connect timeout
        │   │   └── AnswerTimeout ─ connected, but no whole answer within the answer timeout
        │   ├── ConnectionFailure ─ refused, reset, or closed before the answer was whole
        │   │   ├── Unreachable ─ refused, or a proxy that cannot go on: configuration until
        │   │   │                 the API has answered once in the run, an outage after
        │   │   └── StaleConnection ─ a kept-alive connection closed as the request went out
        │   └── ProtocolError ─ not HTTP, oversized headers or body, an answer nobody asked for
        └── AnswerError ─ an HTTP answer that is not the answer asked for
            ├── RateLimited ─ 429: every request must slow down, not just this one
            ├── ServerFailure ─ 5xx or a gateway's error page: the server is in trouble
            ├── UnexpectedAnswer ─ an answer the job cannot read (names what it lacks)
            │   └── ForeignAnswer ─ not of the asked API's shape: another request's, perhaps
            └── ItemRejected ─ a well-formed refusal about this item; asking again repeats it

The gate retries transport errors, RateLimited and ServerFailure; it never retries
UnexpectedAnswer or ItemRejected. Messages never carry an item's key or a secret:
callers mask before raising.
"""

from __future__ import annotations

import sqlite3


class BatchError(Exception):
    """Base of every error this project raises on purpose."""


class RunError(BatchError):
    """An error that ends the run."""


class UsageError(RunError):
    """Bad usage, configuration or input: nothing was asked.

    `setting` names the setting that would fix it (e.g. "encoding"); the CLI turns it
    into a hint naming its flag, which the engine never names.
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class InputError(UsageError):
    """The input cannot be read as a table with the needed columns.

    `suggestions` pairs settings with values the input seems to mean (`ci_column`, `CI`).
    """

    def __init__(
        self,
        message: str,
        setting: str | None = None,
        suggestions: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message, setting)
        self.suggestions = suggestions


class ResumeMismatch(UsageError):
    """The output folder holds progress made from a different input."""


class DirLocked(UsageError):
    """Another live run holds the output folder."""


class ConfigurationError(UsageError):
    """The network setup cannot work as configured; retrying would not help."""


class CertificateError(ConfigurationError):
    """The server's TLS certificate failed verification."""


class NameResolutionError(ConfigurationError):
    """A host name does not resolve."""


class ProxyRefused(ConfigurationError):
    """The egress proxy refused to carry our requests."""


class AbortError(RunError):
    """The server keeps refusing or failing; asking on would only burn the quota."""


class CredentialsRejected(AbortError):
    """The server refused our credentials."""


class OutageTooLong(AbortError):
    """The server stayed down for longer than the run may wait."""


class UnusableAnswers(AbortError):
    """Too many answers could not be used: the server's answers have changed."""


class Stalled(AbortError):
    """No item finished for longer than any wait the run allows: something hangs."""


class PausedError(RunError):
    """The daily cap reached the reserve; the rest waits for the next resume."""


class Interrupted(RunError):
    """A signal asked the run to stop; progress is saved."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StoreError(RunError):
    """The progress store failed; the run cannot save answers any more."""


class AccountingError(RunError):
    """Rows were lost or invented; this is a bug and must never pass silently."""


class RequestError(BatchError):
    """One request got no usable answer; `reason` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransportError(RequestError):
    """No whole HTTP answer came back."""


class RequestTimeout(TransportError):
    """The request ran out of time."""


class ConnectTimeout(RequestTimeout):
    """No connection within the connect timeout."""


class AnswerTimeout(RequestTimeout):
    """Connected, but no whole answer within the answer timeout."""


class ConnectionFailure(TransportError):
    """The connection was refused, reset or closed before the answer was whole."""


class StaleConnection(ConnectionFailure):
    """A kept-alive connection the server closed, without a word, as the request went out."""


class Unreachable(ConnectionFailure):
    """Nothing answers where the settings point; `setting` names the one to check.

    Before the API has answered once in a run it never heals by waiting (the gate makes it
    a `ConfigurationError`); after, it is an outage like any other.
    """

    def __init__(self, reason: str, setting: str | None = None) -> None:
        super().__init__(reason)
        self.setting = setting

    def as_configuration(self) -> ConfigurationError:
        """The same failure before any answer: a setting is wrong, not the API down."""
        return ConfigurationError(
            f"{self.reason}, and the API has not answered once in this run", self.setting
        )


class ProtocolError(TransportError):
    """The peer did not speak HTTP as agreed: garbage, oversized parts, unasked answers."""


class AnswerError(RequestError):
    """An HTTP answer came back, but not the answer asked for."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(reason)


class RateLimited(AnswerError):
    """429: the rate is over what the server allows; `retry_after` is its wish, if any."""


class ServerFailure(AnswerError):
    """A 5xx without an answer, or a gateway's error page."""


class UnexpectedAnswer(AnswerError):
    """An answer the job cannot read; `reason` names the field or shape that was not understood."""


class ForeignAnswer(UnexpectedAnswer):
    """An answer not of the shape the asked API gives: on a reused connection, perhaps a copy
    of another request's answer (the gate asks again), else the API's own."""


class ItemRejected(AnswerError):
    """A well-formed refusal about this one item; asking again would repeat it."""


def describe_store_error(exc: Exception) -> str:
    """What went wrong with the store, in words an operator acts on."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        if "disk is full" in text or "database or disk is full" in text:
            return "the disk is full"
        if "locked" in text:
            return "the store is locked by another process"
    if isinstance(exc, sqlite3.DatabaseError) and "malformed" in text:
        return "the store file is corrupt; start over in a fresh folder"
    return f"{type(exc).__name__}: {text[:120]}"
