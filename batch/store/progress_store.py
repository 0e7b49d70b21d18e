"""Durable progress of a run: the distinct items, their answers, and the rejects."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from batch.contract import Verdict
from batch.errors import StoreError, UsageError, describe_store_error
from batch.store.folder import check_existing_private, ensure_private, remove_store
from batch.store.items import NewItem, OpenItem, Reject, StoredItem, verdict_of, verdict_text
from batch.store.schema import ADDED_COLUMNS, PLAN_SQL, QUEUE_INDEX, SCHEMA

SCHEMA_VERSION = "1"

# SQLite limits host parameters per statement (32766 since 3.32); stay well under.
_LOOKUP_BATCH = 900


class ProgressStore:
    """SQLite in WAL mode; one transaction per input chunk and one per answer.

    With `synchronous=NORMAL` a commit is a write to the WAL, not an fsync, so an
    answer costs tens of microseconds and survives the process being killed; only
    a power cut can lose the answers since the last checkpoint (`checkpoint()`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        ensure_private(path)  # a planted store or link must never receive our items
        for side in (f"{path.name}-wal", f"{path.name}-shm"):
            check_existing_private(path.parent / side)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._open()
        except sqlite3.OperationalError as exc:  # locked, or the disk: not the file's fault
            raise StoreError(
                f"the progress store {path} cannot be opened: {describe_store_error(exc)}"
            ) from None
        except sqlite3.DatabaseError as exc:
            raise UsageError(
                f"the progress store {path} cannot be read ({describe_store_error(exc)})",
                setting="fresh",
            ) from None
        self._check_version()

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        known = {row[1] for row in self._db.execute("PRAGMA table_info(items)")}
        for name, kind in ADDED_COLUMNS.items():
            if name not in known:
                self._db.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
        self._db.execute("DROP INDEX IF EXISTS items_open")
        self._db.execute(QUEUE_INDEX)
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )

    def _check_version(self) -> None:
        path = self.path
        found = self.get_meta("schema_version")
        if found != SCHEMA_VERSION:
            self._db.close()
            raise UsageError(
                f"{path} was written by another version of this program (store schema "
                f"{found}, this one reads {SCHEMA_VERSION})",
                setting="fresh",
            )

    @staticmethod
    def remove(path: Path) -> None:
        """Delete a store and SQLite's side files (write-ahead log, shared memory)."""
        remove_store(path)

    def close(self) -> None:
        try:
            self.checkpoint()
        finally:
            self._db.close()

    def checkpoint(self) -> None:
        """Fold the WAL into the database file and fsync it."""
        with self._saving():
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._saving():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def rows_ingested(self) -> int:
        """The number of the last input row read: a resume reads on after it."""
        return int(self.get_meta("rows_ingested") or 0)

    @property
    def rows_counted(self) -> int:
        """How many data rows were read so far (blank rows and rows above the header are not)."""
        return int(self.get_meta("rows_counted") or self.get_meta("rows_ingested") or 0)

    def first_rows(self, keys: Sequence[str]) -> dict[str, int]:
        """The row each already stored key first appeared on."""
        found: dict[str, int] = {}
        for start in range(0, len(keys), _LOOKUP_BATCH):
            part = keys[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            sql = f"SELECT key, row FROM items WHERE key IN ({marks})"  # noqa: S608
            found.update(self._db.execute(sql, part).fetchall())
        return found

    def ingest_chunk(
        self,
        items: Sequence[NewItem],
        rejects: Sequence[Reject],
        rows: int,
        counted: int | None = None,
    ) -> None:
        """Store one chunk's items and rejects and advance the ingest mark, all or nothing."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO items (key, row, payload, question) VALUES (?, ?, ?, ?)",
                [(i.key, i.row, _dumps(i.payload), i.question) for i in items],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO rejects VALUES (?, ?, ?)",
                [(r.row, r.reason, _dumps(r.raw)) for r in rejects],
            )
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('rows_ingested', ?)", (str(rows),)
            )
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('rows_counted', ?)",
                (str(rows if counted is None else counted),),
            )

    def open_items(self, after: tuple[int, int, int], limit: int) -> list[OpenItem]:
        """Items without a final answer (pending or error), in asking order, after a place.

        The rest of the place's group first, then the groups after it: each query seeks
        the index on all its columns, so tonight's failures behind the place are never
        scanned again (one comparison of the three as a row value seeks on fewer).
        """
        rank, since, seq = after
        columns = "SELECT seq, row, payload, rank, since FROM items WHERE state != 'done' AND "
        with self._saving():
            rows = self._db.execute(
                columns + "rank = ? AND since = ? AND seq > ? ORDER BY seq LIMIT ?",
                (rank, since, seq, limit),
            ).fetchall()
            if len(rows) < limit:
                rows += self._db.execute(
                    columns + "(rank, since) > (?, ?) ORDER BY rank, since, seq LIMIT ?",
                    (rank, since, limit - len(rows)),
                ).fetchall()
        return [
            OpenItem(seq, row, orjson.loads(payload), rank, since)
            for seq, row, payload, rank, since in rows
        ]

    def add_earlier(self, rows: Sequence[tuple[str, str, int, bool, dict[str, Any]]]) -> None:
        """Keep earlier answers (key, question, asked_on day, final, result); the latest wins."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO earlier VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "question = excluded.question, asked_on = excluded.asked_on, "
                "final = excluded.final, result = excluded.result "
                "WHERE excluded.asked_on >= earlier.asked_on",
                [(k, q, day, int(final), _dumps(r)) for k, q, day, final, r in rows],
            )

    def clear_earlier(self) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM earlier")

    def plan(self, young_after: int, plan_key: str | None) -> dict[str, int]:
        """Carry earlier final answers asked after day `young_after`; rank the rest, all at once.

        The counts are kept in meta under `plan_key`, in the same transaction; without a
        key the transaction is rolled back once counted (a dry run's plan).
        """
        with self._saving():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                counts = self._plan(young_after)
                if plan_key is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)", (plan_key, _dumps(counts))
                    )
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT" if plan_key is not None else "ROLLBACK")
        return counts

    def _plan(self, young_after: int) -> dict[str, int]:
        self._db.execute("DELETE FROM earlier WHERE key NOT IN (SELECT key FROM items)")
        carry = (
            "state = 'done', result = e.result, verdict = NULL, carried = 1, since = e.asked_on",
            "e.final AND e.asked_on > ?",
        )
        failed = ("rank = 1", "NOT e.final")
        aged = ("rank = 2, since = e.asked_on", "e.final")  # what carrying left pending
        for (change, when), values in ((carry, (young_after,)), (failed, ()), (aged, ())):
            self._db.execute(PLAN_SQL.format(change=change, when=when), values)
        ranks = dict(
            self._db.execute(
                "SELECT rank, count(*) FROM items WHERE state = 'pending' GROUP BY rank"
            )
        )
        (carried,) = self._db.execute("SELECT count(*) FROM items WHERE carried").fetchone()
        self._db.execute("DELETE FROM earlier")
        return {
            "new": int(ranks.get(0, 0)),
            "failed": int(ranks.get(1, 0)),
            "aged_out": int(ranks.get(2, 0)),
            "carried": int(carried),
        }

    def reopen(self, seqs: Sequence[int]) -> list[OpenItem]:
        """Forget these items' answers (they may be others'): asked again, now or on resume."""
        with self._transaction():
            self._db.executemany(
                "UPDATE items SET state = 'pending', result = NULL, verdict = NULL WHERE seq = ?",
                [(seq,) for seq in seqs],
            )
            rows = [
                self._db.execute(
                    "SELECT seq, row, payload, rank, since FROM items WHERE seq = ?", (seq,)
                ).fetchone()
                for seq in seqs
            ]
        return [OpenItem(s, r, orjson.loads(p), k, n) for s, r, p, k, n in filter(None, rows)]

    def record(self, answers: Sequence[tuple[int, str, dict[str, Any], Verdict | None]]) -> None:
        """Store answers (seq, state, result, verdict) in one transaction."""
        with self._transaction():
            self._db.executemany(
                "UPDATE items SET state = ?, result = ?, verdict = ? WHERE seq = ?",
                [
                    (state, _dumps(result), verdict_text(verdict), seq)
                    for seq, state, result, verdict in answers
                ],
            )

    def iter_items(self, batch: int = 10_000) -> Iterator[list[StoredItem]]:
        """Every item in input order, a batch at a time."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT seq, row, key, payload, state, result, verdict FROM items WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield [
                StoredItem(
                    seq, row, key, orjson.loads(payload), state, _loads(result), verdict_of(verdict)
                )
                for seq, row, key, payload, state, result, verdict in rows
            ]
            last = rows[-1][0]

    def iter_rejects(self, batch: int = 10_000) -> Iterator[list[Reject]]:
        """Every reject in row order, a batch at a time."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT row, reason, raw FROM rejects WHERE row > ? ORDER BY row LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield [Reject(row, reason, orjson.loads(raw)) for row, reason, raw in rows]
            last = rows[-1][0]

    def reject_reasons(self, limit: int = 5) -> dict[str, int]:
        """The most frequent reject reasons; duplicates as one reason, whatever row they repeat."""
        cut = "instr(reason, ': first seen on row')"
        rows = self._db.execute(
            f"SELECT CASE WHEN {cut} > 0 THEN substr(reason, 1, {cut} - 1) ELSE reason END AS r, "  # noqa: S608
            "count(*) AS n FROM rejects GROUP BY r ORDER BY n DESC, r LIMIT ?",
            (limit,),
        ).fetchall()
        return {str(reason): int(n) for reason, n in rows}

    def counts(self) -> dict[str, int]:
        """Items by state, and rejects."""
        with self._saving():
            found: dict[str, int] = {}
            carried = 0
            for state, is_carried, n in self._db.execute(
                "SELECT state, carried, count(*) FROM items GROUP BY state, carried"
            ):
                found[state] = found.get(state, 0) + n
                carried += n if is_carried else 0
            (rejected,) = self._db.execute("SELECT count(*) FROM rejects").fetchone()
        return {
            "pending": int(found.get("pending", 0)),
            "done": int(found.get("done", 0)),
            "error": int(found.get("error", 0)),
            "items": int(sum(found.values())),
            "rejected": int(rejected),
            "carried": int(carried),
        }

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on an error; SQLite's failures stop the run."""
        with self._saving():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _saving(self) -> Iterator[None]:
        """A store call that fails (full disk, lock held too long, corrupt file) stops the run."""
        try:
            yield
        except sqlite3.Error as exc:
            folder = self.path.parent
            raise StoreError(
                f"the progress store in {folder} could not save: {describe_store_error(exc)}"
            ) from exc


def _dumps(value: Any) -> str:
    # Text, not a BLOB: the store stays readable with the sqlite3 shell.
    return orjson.dumps(value).decode()


def _loads(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(orjson.loads(text))
