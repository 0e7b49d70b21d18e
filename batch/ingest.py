"""Claiming a folder for an input, and reading the input into the store a chunk at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from batch.contract import Admitted, Column, Job, Values
from batch.errors import InputError, ResumeMismatch
from batch.log import Log
from batch.reader import InputFile, RawRow
from batch.store import NewItem, ProgressStore, Reject


def check_columns(columns: Sequence[str], needed: Sequence[Column]) -> None:
    """Raise when the input lacks a column the job needs, naming what it has."""
    for column in needed:
        if column.name not in columns:
            shown = ", ".join(repr(c[:24]) for c in columns[:8])
            raise InputError(
                f"input has no column {column.name!r} (it has {shown})", setting=column.setting
            )


def claim(store: ProgressStore, identity: dict[str, Any]) -> bool:
    """Tie the folder's progress to this input and job; True if there is progress to resume."""
    text = json.dumps(identity, sort_keys=True)
    known = store.get_meta("identity")
    if known is None:
        store.set_meta("identity", text)
        return False
    if known != text:
        theirs = json.loads(known)
        differs = ", ".join(k for k in sorted(identity) if identity[k] != theirs.get(k))
        raise ResumeMismatch(
            f"{store.path.parent} holds progress of another run ({differs} differ)",
            setting="fresh",
        )
    return True


def ingest(
    store: ProgressStore, source: InputFile, job: Job[Any, Any], chunk_rows: int, log: Log
) -> None:
    """Admit and deduplicate the input into the store, one transaction per chunk."""
    if store.get_meta("ingest_complete") == "1":
        return
    columns = source.columns()
    check_columns(columns, job.columns())
    store.set_meta("columns", json.dumps(columns, ensure_ascii=False))
    last_row = store.rows_ingested
    for chunk in source.iter_chunks(chunk_rows, skip_rows=last_row):
        items, rejects = admit_chunk(store, chunk, job)
        last_row = chunk[-1].row
        store.ingest_chunk(items, rejects, rows=last_row)
        log.debug("ingested", rows=last_row)
    store.set_meta("rows_total", str(last_row))
    store.set_meta("ingest_complete", "1")


def admit_chunk(
    store: ProgressStore, chunk: Sequence[RawRow], job: Job[Any, Any]
) -> tuple[list[NewItem], list[Reject]]:
    """Split a chunk into new items and rejects (unreadable, refused, or a key seen before)."""
    rejects: list[Reject] = []
    admitted: list[tuple[RawRow, Admitted[Any]]] = []

    # The store keeps a reject only as the job lets it show (under a pseudonym, say).
    def shown(values: Values) -> dict[str, Any]:
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
        items.append(NewItem(raw.row, entry.key, job.encode_item(entry.item)))
    return items, rejects
