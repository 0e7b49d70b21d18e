"""What the command line says when a run ends: the summary, or one line and an exit code."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import os
import re
import resource
import shlex
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

INTERNAL_ERROR = 70
_PR_SET_DUMPABLE = 4


def explain(exc: Exception, debug: bool, redactor: Any, report: Path | None = None) -> NoReturn:
    """Map the job's errors to the contract's exit codes with one line; tracebacks on --debug.

    A run that got as far as leaving a summary also says how to see it as a page.
    """
    from batch import ConfigurationError, RunError, UsageError  # noqa: PLC0415
    from jobs.exits import exit_code_for  # noqa: PLC0415

    if debug:  # the same redactor as the logs: a COPY error may quote a row's CI
        trace = "".join(traceback.format_exception(exc))
        print(redactor.text(trace), file=sys.stderr, end="")
    ran = isinstance(exc, RunError) and (
        not isinstance(exc, UsageError) or isinstance(exc, ConfigurationError)
    )
    if report is not None and ran:
        print(report_line(report), file=sys.stderr)
    if isinstance(exc, RunError):
        fail(redactor.text(_with_hint(exc)), exit_code_for(exc))
    if isinstance(exc, OSError):
        text = redactor.text(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "))
        # A full disk or an I/O error is the machine's trouble, not the command's.
        fail(text, INTERNAL_ERROR if exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT) else 2)
    fail(f"internal error ({type(exc).__name__}); run with --debug for details", INTERNAL_ERROR)


# The engine names the setting that would help; the CLI names the flag.
_HINTS = {
    "fresh": "pass --fresh to start over, or choose another --out",
    "out_dir_busy": "wait for it or choose another --out",
    "encoding": "pass --encoding",
    "encoding_given": "name the file's encoding with --encoding, or leave it out to detect it",
    "out_dir": "choose another --out",
    "migrate": "run `member-recon migrate ROOT` once (see README, BI dataset)",
    "sheet": "pass --sheet NAME",
    "header_row": "pass --header-row N (the header's row number)",
    "base_url": "see --base-url (or KOSCOM_BASE_URL)",
}


def _with_hint(exc: Exception) -> str:
    """The error's message, and the flag that would fix it where the engine named a setting."""
    setting = getattr(exc, "setting", None)
    suggested = getattr(exc, "suggestions", ())
    if suggested:  # the columns the input seems to mean, as flags to paste
        flags = " ".join(f"--{s.replace('_', '-')} {_shell_word(v)}" for s, v in suggested)
        return f"{exc}; did you mean {flags}?"
    if not setting:
        return str(exc)
    hint = _HINTS.get(setting) or f"see --{setting.replace('_', '-')}"
    return f"{exc}; {hint}"


def _shell_word(value: str) -> str:
    """A value as typed on a command line: `성명` as is, `고객 CI` quoted."""
    return value if re.fullmatch(r"[\w.-]+", value) else shlex.quote(value)


def fail(message: str, code: int) -> NoReturn:
    print(f"member-recon: {message}", file=sys.stderr)
    sys.exit(code)


def guard_process() -> None:
    """SIGTERM unwinds like Ctrl-C, files are private, and no core dump can leak secrets."""
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    os.umask(0o077)  # outputs and progress hold CIs: never world-readable
    _no_core_dumps()


def _no_core_dumps() -> None:
    """A core dump would hold the API key and the CIs in flight: none for this process."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # A core_pattern that pipes to a program ignores RLIMIT_CORE; not being dumpable doesn't.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def proxy_passwords() -> list[str]:
    """Passwords in the proxy URLs of the environment: the log redactor must know them."""
    found = []
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        with contextlib.suppress(ValueError):
            password = urlsplit(os.environ.get(name, "")).password
            if password:
                found.append(password)
    return found


def _raise_keyboard_interrupt(signum: int, _: object) -> None:
    raise KeyboardInterrupt(signum)


def read_line(read: dict[str, Any], *, columns: bool = True) -> str:
    """How the input was read, in one line: every run says it, a dry run first of all."""
    how = [
        read.get("encoding") and f"encoding {read['encoding']}",
        read.get("delimiter") and f"{read['delimiter']}-delimited",
        read.get("sheet") is not None and f"sheet {read['sheet']!r}",
        read.get("header_row") and f"header on row {read['header_row']}",
    ]
    line = "read as: " + (", ".join(part for part in how if part) or "Parquet")
    return line + (f"; columns: {', '.join(read.get('columns', []))}" if columns else "")


def say_finished_before(summary: dict[str, Any]) -> None:
    """A rerun of a finished night: it says so, and when, before the earlier summary."""
    finished = summary.get("finished_at")
    when = (
        dt.datetime.fromisoformat(finished).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        if finished
        else "earlier"
    )
    print(
        f"already finished: run {summary.get('run_id', '?')} reconciled "
        f"{summary.get('input', 'this input')} here at {when} (exit "
        f"{summary.get('exit_code', 0)}); nothing was asked now. Its summary and outputs "
        "follow; pass --fresh to run it again."
    )


def _print_read(read: dict[str, Any]) -> None:
    """How the input was read, before any quota is spent: a dry run's first lines."""
    print(read_line(read, columns=False))
    print("  columns:", ", ".join(read.get("columns", [])))
    for row in read.get("samples", []):
        print("  sample: ", "  ".join(f"{k}={v}" for k, v in row.items()))
    for reason, count in read.get("rejects_by_reason", {}).items():
        print(f"  rejected: {count} x {reason}")


def report_line(path: Path) -> str:
    return f"for a report page, run: member-recon report {shlex.quote(str(path))}"


def say_too_many_errors(summary: dict[str, Any], max_error_rate: float) -> None:
    """Exit 1's line: how many ended in error, against the limit, and the top reasons."""
    errors, customers = int(summary.get("error", 0)), int(summary.get("customers", 0))
    fraction = errors / customers if customers else 0.0
    reasons = list(summary.get("errors_by_reason", {}).items())[:3]
    line = (
        f"{errors} of {customers} customer{'' if customers == 1 else 's'} ({fraction:.1%}) "
        "ended in error, "
        f"above --max-error-rate {max_error_rate:g}"
    )
    if reasons:
        line += "; top reasons: " + "; ".join(f"{n} x {reason}" for reason, n in reasons)
    print(f"member-recon: {line}", file=sys.stderr)
    print(f"member-recon: {_RETRY}", file=sys.stderr)


_RETRY = "run the same command again to ask only the customers in error, and publish again"


def say_errors_left(summary: dict[str, Any]) -> None:
    """Exit 0 with customers in error: the store stays for them, and the way to ask them."""
    errors = int(summary.get("error") or 0)
    if errors and summary.get("state") == "done":
        print(f"member-recon: {errors} customers ended in error; {_RETRY}", file=sys.stderr)


def print_summary(
    summary: dict[str, Any], outputs: tuple[Path, ...], report: Path | None = None
) -> None:
    keys = (
        "state",
        "rows",
        "rejected",
        "customers",
        "to_ask",
        "asked",
        "carried",
        "linked",
        "non_member",
        "no_linked_account",
        "error",
        "non_member_with_accounts",
        "accounts",
        "requests",
        "retries",
        "http_429",
        "estimated_requests",
        "estimated_duration_s",
        "duration_s",
        "requests_per_s",
    )
    width = max(len(k) for k in keys)
    if summary.get("state") == "dry_run":
        _print_read(summary.get("input_read") or {})
    elif summary.get("input_read"):
        print(read_line(summary["input_read"]))
    plan = summary.get("plan")
    if plan:
        print(
            f"plan (--max-age {plan['max_age']}): ask {plan['new']} new, {plan['in_error']} "
            f"in error, {plan['aged_out']} aged out; carry {plan['carried']}"
        )
    for key in keys:
        if key in summary:
            print(f"  {key:<{width}}  {summary[key]}")
    for reason, count in summary.get("errors_by_reason", {}).items():
        print(f"  error: {count} x {reason}")
    if summary.get("unsolicited_answers") or summary.get("asked_again"):
        # A gateway that repeats answers: a copy that arrives on a connection just as it is
        # reused can pass for the next customer's. It shows as an answer nobody asked for,
        # or as one that is not its request's; those answered on such a connection were
        # asked again (or are, on resume), on fresh connections.
        print(
            f"member-recon: warning: the gateway repeats answers ("
            f"{summary.get('unsolicited_answers', 0)} arrived that no request asked for): "
            f"check it. {summary.get('asked_again', 0)} customers answered on the connections "
            "they came on were asked again on connections of their own",
            file=sys.stderr,
        )
    if outputs:
        spread = len({path.parent for path in outputs}) > 1  # a dataset's table folders
        base = report if spread and report is not None else outputs[0].parent
        print(f"outputs in {base}:")
        for path in outputs:
            print(f"  {path.relative_to(base)}")
    if report is not None and summary.get("state") != "dry_run":
        print(report_line(report))
