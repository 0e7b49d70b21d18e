"""One run of the KOSCOM job: the engine's life cycle with the KOSCOM job plugged in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.errors import PausedError, UsageError
from batch.log import Log
from batch.run.lifecycle import run_batch
from batch.settings import BatchSettings
from jobs.dataset.columns import check_columns, check_kept_names
from jobs.dataset.upgrade import check_schema
from jobs.koscom import LEGACY_ENCODINGS, KoscomJob
from jobs.settings import RunSettings

__all__ = ["RunResult", "RunSettings", "run"]

STALL_MARGIN = 600.0  # s: retries back off 15 s at most, five times, on two questions
DISPLAY_ZONE = "Asia/Seoul"  # xlsx shows times in KST, as the service's staff read them


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished (or dry) run produced."""

    summary: dict[str, Any]
    exit_code: int
    outputs: tuple[Path, ...]
    finished_before: bool = False  # the summary is the earlier run's; nothing was asked now


def run(settings: RunSettings, log: Log) -> RunResult:
    """Run the job once; raise a RunError for every way it can stop early."""
    check_kept_names(settings.keep_columns)
    if settings.pseudonym_key and settings.ci_column in settings.keep_columns:
        name = settings.ci_column
        raise UsageError(f"--keep-columns {name!r} would write raw CIs under --pseudonymize")
    if settings.dataset_root is not None and settings.dataset_root.is_dir():
        check_schema(settings.dataset_root)
        check_columns(settings.dataset_root, settings.ci_field, settings.keep_columns)
    engine = BatchSettings(
        input_path=settings.input_path,
        out_dir=settings.out_dir,
        workers=settings.client.concurrency,
        drain_timeout=settings.client.timeout + 2,
        file_format=settings.file_format,
        encoding=settings.encoding,
        legacy_encodings=LEGACY_ENCODINGS,
        sheet=settings.sheet,
        delimiter=settings.delimiter,
        header_row=settings.header_row,
        fresh=settings.fresh,
        keep_progress=settings.keep_progress,
        # Longer than any wait the gate allows: the longest outage, then a customer's retries.
        stall_timeout=settings.client.max_outage + STALL_MARGIN,
        chunk_rows=settings.chunk_rows,
        dry_run=settings.dry_run,
        progress_tty=settings.progress_tty,
        progress_interval=settings.progress_interval,
        dataset_root=settings.dataset_root,
        run_date=settings.run_date,
        file_mode=settings.file_mode,
        display_zone=DISPLAY_ZONE,
        max_age=settings.max_age,
    )
    try:
        result = run_batch(KoscomJob(settings, log), engine, log)
    except PausedError as paused:
        remaining = _summary(settings.out_dir).get("unanswered", "some")
        raise PausedError(
            f"{paused}; {remaining} customers remain: run the same command again "
            "after the daily reset (09:00 KST) to finish them"
        ) from None
    code = int(result.summary.get("exit_code", 0))
    return RunResult(result.summary, code, result.outputs, result.finished_before)


def _summary(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / "summary.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}
