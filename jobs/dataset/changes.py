"""The change feed: what changed for each customer since the latest earlier successful run.

One row per customer and event. Membership and account events compare only values
both runs know; a customer in error today is reported as `now_in_error` and nothing
else, so an outage never looks like customers losing their accounts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from batch import deferred
from jobs.dataset.nights import finished_nights
from jobs.dataset.outputs import table_schema

EVENTS = (
    "new_customer",
    "gone_from_input",
    "now_in_error",
    "recovered_from_error",
    "became_member",
    "became_non_member",
    "linked_first_account",
    "lost_all_accounts",
    "account_added",
    "account_removed",
)

_VIEWS = """
CREATE TEMP VIEW cur AS SELECT {key} AS k, membership, linked_accounts, status
    FROM read_parquet({cur_rec}, hive_partitioning = false);
CREATE TEMP VIEW prev AS SELECT {key} AS k, membership, linked_accounts, status
    FROM read_parquet({prev_rec}, hive_partitioning = false);
CREATE TEMP VIEW cur_acc AS SELECT {key} AS k, com_id, vt_acc_no
    FROM read_parquet({cur_acc}, hive_partitioning = false);
CREATE TEMP VIEW prev_acc AS SELECT {key} AS k, com_id, vt_acc_no
    FROM read_parquet({prev_acc}, hive_partitioning = false);
CREATE TEMP TABLE good (k VARCHAR, membership VARCHAR, linked_accounts BIGINT, d DATE);
CREATE TEMP TABLE good_acc (k VARCHAR, com_id VARCHAR, vt_acc_no VARCHAR);
"""
# Customers in error last night who are answered tonight, whose last good answer is not
# yet found: one earlier night at a time, newest first, until none is left.
_WANTED = """
SELECT count(*) FROM cur c JOIN prev p USING (k)
WHERE p.status = 'error' AND c.status <> 'error' AND k NOT IN (SELECT k FROM good)
"""
_LOOK_BACK = """
CREATE OR REPLACE TEMP TABLE found AS
SELECT r.{key} AS k, r.membership, r.linked_accounts, $day::DATE AS d
FROM read_parquet($rec, hive_partitioning = false) r
WHERE r.status <> 'error' AND r.{key} IN (
    SELECT k FROM cur c JOIN prev p USING (k)
    WHERE p.status = 'error' AND c.status <> 'error' AND k NOT IN (SELECT k FROM good));
INSERT INTO good SELECT * FROM found;
INSERT INTO good_acc SELECT {key}, com_id, vt_acc_no
    FROM read_parquet($acc, hive_partitioning = false) WHERE {key} IN (SELECT k FROM found);
"""
_SQL = """
WITH j AS (
    SELECT coalesce(c.k, p.k) AS k, c.k IS NOT NULL AS now, p.k IS NOT NULL AS before,
           c.status AS cs, p.status AS ps
    FROM cur c FULL OUTER JOIN prev p ON c.k = p.k
),
-- What each customer answered last, errors seen through: last night's answer, or for a
-- customer in error then, the last good answer before (the `good` tables).
known AS (
    SELECT k, membership, linked_accounts, $previous_run_date::DATE AS d
        FROM prev WHERE status <> 'error'
    UNION ALL SELECT * FROM good
),
known_acc AS (
    SELECT * FROM prev_acc WHERE k IN (SELECT k FROM prev WHERE status <> 'error')
    UNION ALL SELECT * FROM good_acc
),
both_known AS (
    SELECT c.k, c.membership AS cm, c.linked_accounts AS cl, kn.membership AS pm,
           kn.linked_accounts AS pl, kn.d
    FROM cur c JOIN known kn ON c.k = kn.k WHERE c.status <> 'error'
),
events AS (
    SELECT k, 'new_customer' AS event, NULL AS detail, NULL AS previous, NULL AS current,
           $previous_run_date::DATE AS d
        FROM j WHERE now AND NOT before
    UNION ALL SELECT k, 'gone_from_input', NULL, NULL, NULL, $previous_run_date::DATE
        FROM j WHERE before AND NOT now
    UNION ALL SELECT k, 'now_in_error', NULL, ps, cs, $previous_run_date::DATE
        FROM j WHERE now AND before AND cs = 'error' AND ps <> 'error'
    UNION ALL SELECT k, 'recovered_from_error', NULL, ps, cs, $previous_run_date::DATE
        FROM j WHERE now AND before AND ps = 'error' AND cs <> 'error'
    UNION ALL SELECT k, 'became_member', NULL, pm, cm, d
        FROM both_known WHERE pm = 'nonMember' AND cm = 'member'
    UNION ALL SELECT k, 'became_non_member', NULL, pm, cm, d
        FROM both_known WHERE pm = 'member' AND cm = 'nonMember'
    UNION ALL SELECT k, 'linked_first_account', NULL, CAST(pl AS VARCHAR), CAST(cl AS VARCHAR), d
        FROM both_known WHERE pl = 0 AND cl > 0
    UNION ALL SELECT k, 'lost_all_accounts', NULL, CAST(pl AS VARCHAR), CAST(cl AS VARCHAR), d
        FROM both_known WHERE pl > 0 AND cl = 0
    UNION ALL SELECT a.k, 'account_added', a.com_id || ':' || a.vt_acc_no, NULL, NULL, b.d
        FROM cur_acc a JOIN both_known b ON a.k = b.k
        WHERE b.pl IS NOT NULL AND b.cl IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM known_acc p
            WHERE p.k = a.k AND p.com_id = a.com_id AND p.vt_acc_no = a.vt_acc_no)
    UNION ALL SELECT a.k, 'account_removed', a.com_id || ':' || a.vt_acc_no, NULL, NULL, b.d
        FROM known_acc a JOIN both_known b ON a.k = b.k
        WHERE b.pl IS NOT NULL AND b.cl IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM cur_acc c
            WHERE c.k = a.k AND c.com_id = a.com_id AND c.vt_acc_no = a.vt_acc_no)
)
SELECT k AS {key}, event, detail, previous, current, d AS previous_run_date
FROM events ORDER BY k, event, detail
"""


def duckdb_connection() -> Any:
    """An in-memory DuckDB that draws no progress bar on stderr (it would break the log lines)."""
    with deferred():  # a signal inside DuckDB's import aborts the process (exit 134)
        import duckdb  # noqa: PLC0415  (lazy: only --dataset runs need it)

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def changes_schema(ci_field: str) -> Any:
    import pyarrow as pa  # noqa: PLC0415

    text = pa.string()
    return table_schema(
        [
            pa.field(ci_field, text, nullable=False),
            pa.field("event", text, nullable=False),
            *(pa.field(name, text) for name in ("detail", "previous", "current")),
            pa.field("previous_run_date", pa.date32()),
        ]
    )


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def compute_changes(
    root: Path, current: tuple[Path, Path], run_date: dt.date, ci_field: str
) -> Any:
    """The change feed as an Arrow table; empty when there is no earlier night to compare with.

    Compared with the latest earlier finished night; a customer in error there is compared
    with their last good answer before it, so that a change across an error is an event.
    """
    schema = changes_schema(ci_field)
    nights = finished_nights(root, run_date)
    previous = next(nights, None)
    if previous is None:
        return schema.empty_table()

    prev_rec, prev_acc, prev_date = previous
    with duckdb_connection() as con:
        files = {
            "cur_rec": current[0],
            "cur_acc": current[1],
            "prev_rec": prev_rec,
            "prev_acc": prev_acc,
        }
        # Views take no parameters: the files are named as SQL literals.
        con.execute(_VIEWS.format(key=ci_field, **{k: _literal(v) for k, v in files.items()}))
        for rec, acc, day in nights:
            if not con.execute(_WANTED).fetchall()[0][0]:
                break
            for statement in _LOOK_BACK.format(key=ci_field).split(";")[:-1]:
                params = {"rec": str(rec), "acc": str(acc), "day": day.isoformat()}
                con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
        table: Any = con.sql(
            _SQL.format(key=ci_field), params={"previous_run_date": prev_date.isoformat()}
        ).to_arrow_table()
    return table.cast(schema).replace_schema_metadata(schema.metadata)
