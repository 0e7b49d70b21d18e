"""One run of the KOSCOM job: the engine's life cycle with the KOSCOM job plugged in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.errors import PausedError, UsageError
from batch.lifecycle import BatchSettings, run_batch
from batch.log import Log
from jobs.koscom import LEGACY_ENCODINGS, KoscomJob
from jobs.outputs import RECONCILED_COLUMNS
from jobs.settings import RunSettings

__all__ = ["RunResult", "RunSettings", "run"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished (or dry) run produced."""

    summary: dict[str, Any]
    exit_code: int
    outputs: tuple[Path, ...]


def run(settings: RunSettings, log: Log) -> RunResult:
    """Run the job once; raise a RunError for every way it can stop early."""
    for name in settings.keep_columns:
        if name in RECONCILED_COLUMNS or name == "ci_hmac":
            raise UsageError(f"--keep-columns {name!r} would hide an output column of that name")
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
        chunk_rows=settings.chunk_rows,
        dry_run=settings.dry_run,
        progress_tty=settings.progress_tty,
        progress_interval=settings.progress_interval,
        dataset_root=settings.dataset_root,
        run_date=settings.run_date,
    )
    try:
        result = run_batch(KoscomJob(settings, log), engine, log)
    except PausedError as paused:
        remaining = _summary(settings.out_dir).get("unanswered", "some")
        raise PausedError(
            f"{paused}; {remaining} customers remain: run the same command again "
            "after the daily reset (09:00 KST) to finish them"
        ) from None
    return RunResult(result.summary, int(result.summary.get("exit_code", 0)), result.outputs)


def _summary(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / "summary.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}
