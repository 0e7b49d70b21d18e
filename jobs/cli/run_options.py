"""Turning the `run` command's options into checked run settings."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batch import BatchSettings, Log, UsageError
from batch.http import RetryPolicy
from batch.inputs import delimiter_from
from batch.outputs import work_dir
from jobs.api.client import ClientSettings
from jobs.api.models import Partner
from jobs.cli.tuning import steady_loop
from jobs.dataset.sinks import check_sink, check_sink_file
from jobs.settings import DISPLAY_ZONE, LEGACY_ENCODINGS, STALL_MARGIN, RunSettings

PRODUCTION_HOSTS = frozenset({"apigw.koscom.co.kr", "oap.k-mydata.org"})
MIN_PSEUDONYM_KEY = 32  # bytes: an HMAC key shorter than its hash's block gives less than it seems


# Flags that reach ClientSettings under their own names.
_CLIENT_FLAGS = ("rate", "concurrency", "timeout", "connect_timeout", "max_outage", "daily_reserve")


def run_settings(
    options: dict[str, Any], api_key: str | None, run_id: str, log: Log
) -> RunSettings:
    """The run's settings from the command line's options, checked; UsageError if they clash."""

    com_id, srv_id = options["com_id"], options["srv_id"]
    for flag, value in (
        ("--com-id (or KOSCOM_COM_ID)", com_id),
        ("--srv-id (or KOSCOM_SRV_ID)", srv_id),
    ):
        if not value:
            raise UsageError(f"{flag} is required")
    if len(com_id) != 5:
        raise UsageError("--com-id (or KOSCOM_COM_ID) must be 5 characters")
    if len(srv_id) > 20:
        raise UsageError("--srv-id (or KOSCOM_SRV_ID) must be 1 to 20 characters")
    delimiter = options["delimiter"]
    if delimiter is not None:
        try:
            delimiter = delimiter_from(delimiter)
        except ValueError as exc:
            raise UsageError(f"--delimiter {exc}") from None
    base_url = _checked_base_url(options["base_url"], log)
    if not api_key and not options["dry_run"]:
        raise UsageError("no API key: set KOSCOM_API_KEY or pass --api-key-file")
    run_date = (options["run_date"] or dt.datetime.now().astimezone()).date()
    dataset_root = options["dataset_root"]
    if dataset_root is not None:
        # Absolute (links unresolved): a rerun compares it with the paths an earlier run kept.
        dataset_root = dataset_root.absolute()
        if options["out_dir"] is not None:
            raise UsageError("--dataset and --out name the same thing; give one")
        if options["file_format"] != "parquet":
            raise UsageError(f"--dataset writes Parquet; drop --format {options['file_format']}")
    elif options["sinks"] or options["run_date"]:
        raise UsageError("--sink and --run-date go with --dataset")
    for url in options["sinks"]:
        check_sink(url)
    max_age = options.get("max_age")
    if max_age is not None and dataset_root is None:
        raise UsageError(
            "--max-age goes with --dataset: it carries answers from the dataset's earlier nights"
        )
    out_dir = (
        work_dir(dataset_root, run_date)
        if dataset_root is not None
        else options["out_dir"] or Path("out") / run_date.isoformat()
    )
    pseudonym_key = None
    if options["pseudonymize"]:
        pseudonym_key = os.environ.get("KOSCOM_PSEUDONYM_KEY", "").encode() or None
        if pseudonym_key is None:
            raise UsageError("--pseudonymize needs the key in KOSCOM_PSEUDONYM_KEY")
        if len(pseudonym_key) < MIN_PSEUDONYM_KEY:
            raise UsageError(
                f"KOSCOM_PSEUDONYM_KEY has {len(pseudonym_key)} bytes; it needs at least "
                f"{MIN_PSEUDONYM_KEY} (e.g. `openssl rand -hex 32`)"
            )
    keep = tuple(c.strip() for c in options["keep_columns"].split(",") if c.strip())
    file_mode = int(options.get("file_mode") or "0600", 8)
    if file_mode & 0o004 and pseudonym_key is None:
        raise UsageError(
            f"--file-mode {file_mode:04o} makes the outputs world-readable, and they hold raw "
            "CIs: add --pseudonymize, or use 0640 to share with a group"
        )
    for url in options["sinks"]:
        check_sink_file(url, raw_cis=pseudonym_key is None)
    client = ClientSettings(
        base_url=base_url,
        api_key=api_key or "",
        partner=Partner(com_id, srv_id),
        report_every=options["progress_interval"],
        retry=RetryPolicy(attempts=options["attempts"]),
        **{name: options[name] for name in _CLIENT_FLAGS},
    )
    engine = BatchSettings(
        input_path=options["input_path"],
        out_dir=out_dir,
        workers=client.concurrency,
        drain_timeout=client.timeout + 2,
        file_format=options["file_format"],
        encoding=options["encoding"],
        legacy_encodings=LEGACY_ENCODINGS,
        sheet=options["sheet"],
        delimiter=delimiter,
        header_row=options["header_row"],
        fresh=options["fresh"],
        keep_progress=options["keep_progress"],
        # Longer than any wait the gate allows: the longest outage, then a customer's retries.
        stall_timeout=client.max_outage + STALL_MARGIN,
        dry_run=options["dry_run"],
        progress_tty=sys.stderr.isatty(),
        progress_interval=options["progress_interval"],
        dataset_root=dataset_root,
        run_date=run_date,
        file_mode=file_mode,
        display_zone=DISPLAY_ZONE,
        max_age=max_age,
        asking_tuning=steady_loop,
    )
    return RunSettings(
        engine,
        client,
        ci_column=options["ci_column"],
        name_column=options["name_column"],
        max_error_rate=options["max_error_rate"],
        keep_columns=keep,
        pseudonym_key=pseudonym_key,
        sinks=tuple(options["sinks"]),
        run_id=run_id,
    )


def api_key_from(path: Path | None) -> str | None:
    """The API key from --api-key-file, else KOSCOM_API_KEY; never from a flag's value."""
    if path is None:
        return _checked_key(os.environ.get("KOSCOM_API_KEY", "").strip(), "KOSCOM_API_KEY")
    with path.open("rb") as file:  # checked as opened: no swap between the check and the read
        info = os.fstat(file.fileno())
        if info.st_uid != os.geteuid():
            # Someone else's file: they chose the key, and may read it or swap it.
            raise UsageError(f"--api-key-file {path} belongs to another user (uid {info.st_uid})")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            # As ssh refuses a private key others can read: the key would be theirs too.
            raise UsageError(
                f"--api-key-file {path} can be read by others (mode "
                f"{stat.S_IMODE(info.st_mode):o}); run chmod 600 {path}"
            )
        raw = file.read(64 * 1024)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--api-key-file {path} is not UTF-8 text") from None
    return _checked_key(text.strip(), f"--api-key-file {path}")


def _checked_key(key: str, source: str) -> str | None:
    """A key that can go into a header: printable ASCII; a NUL, CR or LF would split it."""
    if key and not (key.isascii() and key.isprintable()):
        raise UsageError(
            f"the API key in {source} holds a control character (a NUL, CR or LF?) or "
            "non-ASCII text; write the key alone on one line"
        )
    return key or None


def _checked_base_url(url: str, log: Log) -> str:
    """https anywhere but loopback; and say so when the production host is used."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"--base-url {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise UsageError("--base-url must use https for any host but this machine")
    if host in PRODUCTION_HOSTS:
        log.warning("production", host=host)
        print(f"member-recon: using the PRODUCTION API at {host}", file=sys.stderr)
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
