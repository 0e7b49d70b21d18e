"""Claiming a folder for an input, and reading the input into the store a chunk at a time.

The input's header is found and its columns checked (`InputFile.layout`) before the
folder is claimed, so a wrong column option leaves the folder free for the corrected run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batch.contract import Admitted, Job, RowValues
from batch.errors import InputError, ResumeMismatch
from batch.inputs import InputFile, Layout, RawRow
from batch.log import Log
from batch.settings import BatchSettings
from batch.store import NewItem, ProgressStore, Reject


def identity_of(job: Job, settings: BatchSettings, source: InputFile) -> dict[str, Any]:
    """What ties the folder to this input: its bytes, the job, and how it is read."""
    given: dict[str, Any] = {
        "encoding": settings.encoding,
        "delimiter": settings.delimiter,
        "header_row": settings.header_row,
        "max_age": settings.max_age,  # another age limit makes another plan
    }
    reading = {key: value for key, value in given.items() if value is not None}
    return {"input_sha256": source.fingerprint(), **job.identity(), **reading}


KEPT_FOR_ERRORS = "kept_for_errors"  # meta: the night is published; the store waits for errors


def open_store(path: Path, identity: dict[str, Any], log: Log) -> ProgressStore:
    """The folder's store; one that a published night kept for its failures yields to another
    input, as a store deleted after the night would have (the folder is not refused)."""
    store = ProgressStore(path)
    known = store.get_meta("identity")
    if store.get_meta(KEPT_FOR_ERRORS) is None or known is None or not _differs(identity, known):
        return store
    store.close()
    ProgressStore.remove(path)
    log.info("store_replaced", reason="another input; the night it published is not asked again")
    return ProgressStore(path)


def claim(store: ProgressStore, identity: dict[str, Any]) -> bool:
    """Tie the folder's progress to this input and job; True if there is progress to resume."""
    text = json.dumps(identity, sort_keys=True)
    known = store.get_meta("identity")
    if known is None:
        store.set_meta("identity", text)
        return False
    differs = _differs(identity, known)
    if differs:
        raise ResumeMismatch(
            f"{store.path.parent} holds progress of another run ({differs} differ)",
            setting="fresh",
        )
    return True


def how_read(layout: Layout | None, store: ProgressStore) -> dict[str, Any]:
    """How the input was read, its first rows (raw: the job masks them) and reject reasons."""
    if layout is None:
        return {}
    return {
        **layout.describe(),
        "samples": list(layout.samples),
        "rejects_by_reason": store.reject_reasons(10),
    }


def _differs(identity: dict[str, Any], known: str) -> str:
    """The keys whose values differ; a key added by a later version reads as absent (None)."""
    theirs = json.loads(known)
    return ", ".join(k for k in sorted({*identity, *theirs}) if identity.get(k) != theirs.get(k))


def ingest(
    store: ProgressStore,
    source: InputFile,
    layout: Layout,
    job: Job,
    chunk_rows: int,
    *,
    log: Log,
) -> bool:
    """Admit and deduplicate the input into the store, one transaction per chunk.

    False when an earlier run already read it all (nothing was read now).
    """
    if store.get_meta("ingest_complete") == "1":
        return False
    # The names as the job lets them show: a header may hold what no file may keep.
    shown = list(job.reject_values(dict.fromkeys(layout.columns)))
    store.set_meta("columns", json.dumps(shown, ensure_ascii=False))
    last_row, counted = store.rows_ingested, store.rows_counted
    for chunk in source.iter_chunks(layout, chunk_rows, skip_rows=last_row):
        items, rejects = admit_chunk(store, chunk, job)
        last_row, counted = chunk[-1].row, counted + len(chunk)
        store.ingest_chunk(items, rejects, rows=last_row, counted=counted)
        log.debug("ingested", rows=counted, last_row=last_row)
    store.set_meta("rows_total", str(counted))
    store.set_meta("ingest_complete", "1")
    return True


def check_input(store: ProgressStore, source: InputFile, layout: Layout, *, read: bool) -> None:
    """A file that changed while it was read, or with no item to ask about, is bad input."""
    name = source.path.name
    if read:
        # Size, time and inode catch a rewrite; the hash also catches one that kept them.
        known = json.loads(store.get_meta("identity") or "{}").get("input_sha256")
        if not source.unchanged() or (known and source.fingerprint() != known):
            raise InputError(
                f"input {name} changed while it was read; run again once it is complete"
            )
    if store.counts()["items"]:
        return
    rows = store.rows_counted
    where = f"header on row {layout.header_row}: " if layout.header_row else "columns "
    columns = where + ", ".join(repr(c[:24]) for c in layout.columns[:8])
    if rows == 0:
        raise InputError(f"input {name} has no rows under its header ({columns})")
    reasons = "; ".join(f"{n} × {r}" for r, n in store.reject_reasons(3).items())
    counted = f"{rows} row{'s' * (rows != 1)} read"
    raise InputError(
        f"input {name} has nothing to check: {counted}, every one rejected ({reasons}); {columns}"
    )


def admit_chunk(
    store: ProgressStore, chunk: Sequence[RawRow], job: Job
) -> tuple[list[NewItem], list[Reject]]:
    """Split a chunk into new items and rejects (unreadable, refused, or a key seen before)."""
    rejects: list[Reject] = []
    admitted: list[tuple[RawRow, Admitted]] = []

    # The store keeps a reject only as the job lets it show (under a pseudonym, say).
    def shown(values: RowValues) -> dict[str, Any]:
        return dict(job.reject_values(values))

    for raw in chunk:
        if raw.problem is not None:
            rejects.append(Reject(raw.row, f"row {raw.problem}", shown(raw.values)))
            continue
        verdict = job.admit(raw.values)
        if isinstance(verdict, str):
            rejects.append(Reject(raw.row, verdict, shown(raw.values)))
        else:
            admitted.append((raw, verdict))
    first_seen = store.first_rows([entry.key for _, entry in admitted])
    items: list[NewItem] = []
    for raw, entry in admitted:
        first = first_seen.get(entry.key)
        if first is not None:
            reason = f"duplicate {job.key_name}: first seen on row {first}"
            rejects.append(Reject(raw.row, reason, shown(raw.values)))
            continue
        first_seen[entry.key] = raw.row
        items.append(NewItem(raw.row, entry.key, entry.item, entry.question))
    return items, rejects
