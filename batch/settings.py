"""What the engine needs to know of a run, and what it gives back."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """Where the run reads and writes, and how it goes about it."""

    input_path: Path
    out_dir: Path
    workers: int
    drain_timeout: float
    file_format: str = "parquet"
    encoding: str | None = None
    legacy_encodings: Mapping[str, str] = field(default_factory=dict)
    sheet: str | None = None
    delimiter: str | None = None
    header_row: int | None = None
    fresh: bool = False
    chunk_rows: int = 20_000
    dry_run: bool = False
    progress_tty: bool = False
    progress_interval: float = 30.0
    dataset_root: Path | None = None  # out_dir is then the night's work folder
    run_date: dt.date | None = None
    keep_progress: bool = False  # keep the store after a run with nothing left to ask
    stall_timeout: float | None = None  # end the run when nothing finishes for this long
    file_mode: int = 0o600  # outputs; folders to match; the progress store stays 0600
    display_zone: str = "UTC"  # the zone xlsx shows timestamps in
    # Carry an earlier final answer asked fewer than this many run dates before run_date.
    max_age: int | None = None
    # Interpreter-wide tuning around the asking phase (the GC, the GIL): the program's entry
    # chooses it; the engine sets none of its own.
    asking_tuning: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a run produced: the job's summary and the published files."""

    summary: dict[str, Any]
    outputs: tuple[Path, ...]
    finished_before: bool = False  # an earlier run had finished it: nothing was done now
