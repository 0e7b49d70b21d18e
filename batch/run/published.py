"""A dataset night once its files are in place: its after-publish work (the job's sinks),
finished by a rerun when a kill or a failure cut it short, with nothing asked, written or
logged twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batch.contract import Job
from batch.log import Log
from batch.outputs import run_log_path
from batch.store import ProgressStore

PUBLISHED = "published"  # store meta: the night's files, once they are in place


def remember(store: ProgressStore, published: Sequence[Path]) -> None:
    """Before the run-log row: from here on a rerun finishes this attempt, not a new one."""
    store.set_meta(PUBLISHED, json.dumps([str(path) for path in published]))


def forget_published(store: ProgressStore) -> None:
    """The after-publish work is done, or new answers make the published night stale."""
    if store.get_meta(PUBLISHED):
        store.set_meta(PUBLISHED, "")


def after_publish(job: Job, root: Path, published: Sequence[Path]) -> None:
    by_table = {path.name.split(".", 1)[0]: path for path in published}
    job.after_publish(by_table, run_log_path(root))


def published_files(store: ProgressStore) -> tuple[Path, ...] | None:
    """The files of the night this store published, while they stand and nothing is open."""
    files = store.get_meta(PUBLISHED)
    counts = store.counts()
    if not files or counts["pending"] + counts["error"]:
        return None
    published = tuple(Path(name) for name in json.loads(files))
    if not all(path.is_file() for path in published):
        return None  # removed since: the night is made again
    return published


def finish_published(job: Job, root: Path, published: tuple[Path, ...], log: Log) -> dict[str, Any]:
    """The after-publish work again; the night's summary as the job amended it."""
    log.info("published_before", dataset=str(root))
    after_publish(job, root, published)
    summary_file = next(path for path in published if path.name == "summary.json")
    return dict(json.loads(summary_file.read_text(encoding="utf-8")))
