"""The latest answer of each customer, from the dataset's last finished night (for --max-age).

That night is whole (every customer of its input, asked or carried), so it holds each
customer's latest answer with the run date that asked it. A night written before
`asked_on` existed asked every answer it holds: its own date is theirs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batch import Earlier, Log
from jobs.api.models import VirtualAccount
from jobs.dataset.changes import duckdb_connection
from jobs.dataset.nights import previous_run
from jobs.reconcile import Reconciled, Status
from jobs.record import CustomerRecord, record_to_store

_SQL = """
WITH acc AS (
    SELECT {key} AS k,
           list([com_id, vt_acc_no, vt_acc_alias] ORDER BY file_row_number) AS accounts
    FROM read_parquet($acc, hive_partitioning = false, file_row_number = true)
    WHERE hash({key}) % $parts = $part
    GROUP BY {key}
)
SELECT r.{key} AS k, r.kor_name, r.membership, r.linked_accounts, r.status, r.error,
       r.terms_expire_date, r.checked_at, {asked_on} AS asked_on, acc.accounts
FROM read_parquet($rec, hive_partitioning = false) r LEFT JOIN acc ON acc.k = r.{key}
WHERE hash(r.{key}) % $parts = $part
"""
# Customers per pass: DuckDB's aggregate of a night's accounts holds a pass in memory.
_PASS = 100_000


def question_of(name: str, key: bytes | None) -> str:
    """What an answer depends on besides the CI: the name asked with, as a digest."""
    data = name.encode()
    digest = hmac.new(key, data, hashlib.sha256) if key else hashlib.sha256(data)
    return digest.hexdigest()[:32]


def latest_answers(
    root: Path, run_date: dt.date, ci_field: str, key: bytes | None, log: Log
) -> Iterator[Earlier]:
    """Every customer's answer in the last finished night before `run_date`."""
    night = previous_run(root, run_date)
    if night is None:
        return
    import pyarrow.parquet as pq  # noqa: PLC0415

    reconciled, accounts, day = night
    names = pq.read_schema(reconciled).names
    if ci_field not in names:  # written with(out) --pseudonymize: its keys are not ours
        log.warning("nothing_to_carry", night=day.isoformat(), reason=f"it has no {ci_field}")
        return
    asked_on = "r.asked_on" if "asked_on" in names else "$night::DATE"
    parts = max(1, -(-pq.ParquetFile(reconciled).metadata.num_rows // _PASS))
    with duckdb_connection() as con:
        con.execute("SET TimeZone = 'UTC'")
        sql = _SQL.format(key=ci_field, asked_on=f"coalesce({asked_on}, $night::DATE)")
        for part in range(parts):  # a 1/parts share of the customers at a time
            params = {
                "rec": str(reconciled),
                "acc": str(accounts),
                "night": day.isoformat(),
                "parts": parts,
                "part": part,
            }
            rows = con.sql(sql, params=params)
            # DuckDB 2 renamed the streaming reader; 1.x names it fetch_arrow_reader.
            reader = getattr(rows, "to_arrow_reader", None) or rows.fetch_arrow_reader
            for batch in reader(20_000):
                for row in batch.to_pylist():
                    yield _earlier(row, key)


def _earlier(row: dict[str, Any], key: bytes | None) -> Earlier:
    status = Status(row["status"])
    outcome = Reconciled(
        membership=row["membership"],
        linked_accounts=row["linked_accounts"],
        status=status,
        error=row["error"],
        terms_expire_date=row["terms_expire_date"],
        accounts=tuple(VirtualAccount(*entry) for entry in row["accounts"] or ()),
    )
    record = CustomerRecord(outcome, row["checked_at"], row["asked_on"])
    return Earlier(
        key=row["k"],
        record=record_to_store(record),
        asked_on=row["asked_on"],
        final=record.is_final,
        question=question_of(row["kor_name"], key),
    )
