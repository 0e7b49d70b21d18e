"""One run of the KOSCOM job: the engine's life cycle with the KOSCOM job plugged in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch import Log, PausedError, UsageError
from batch.run import run_batch
from jobs.dataset.columns import check_columns, check_kept_names
from jobs.dataset.upgrade import check_schema
from jobs.koscom import KoscomJob
from jobs.settings import RunSettings

__all__ = ["RunResult", "RunSettings", "run"]


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
    root = settings.engine.dataset_root
    if root is not None and root.is_dir():
        check_schema(root)
        check_columns(root, settings.ci_field, settings.keep_columns)
    try:
        result = run_batch(KoscomJob(settings, log), settings.engine, log)
    except PausedError as paused:
        remaining = _summary(settings.engine.out_dir).get("unanswered", "some")
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
