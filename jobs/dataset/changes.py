"""The change feed: what changed for each customer since the latest earlier successful run.

One row per customer and event. Membership and account events compare only values
both runs know; a customer in error today is reported as `now_in_error` and nothing
else, so an outage never looks like customers losing their accounts.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from batch.outputs.dataset import earlier_nights, night_file
from jobs.dataset.outputs import SCHEMA_METADATA

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

_SQL = """
WITH cur AS (
    SELECT {key} AS k, membership, linked_accounts, status
    FROM read_parquet($cur_rec, hive_partitioning = false)),
prev AS (
    SELECT {key} AS k, membership, linked_accounts, status
    FROM read_parquet($prev_rec, hive_partitioning = false)),
cur_acc AS (
    SELECT {key} AS k, com_id, vt_acc_no FROM read_parquet($cur_acc, hive_partitioning = false)),
prev_acc AS (
    SELECT {key} AS k, com_id, vt_acc_no FROM read_parquet($prev_acc, hive_partitioning = false)),
j AS (
    SELECT coalesce(c.k, p.k) AS k, c.k IS NOT NULL AS now, p.k IS NOT NULL AS before,
           c.membership AS cm, p.membership AS pm, c.linked_accounts AS cl,
           p.linked_accounts AS pl, c.status AS cs, p.status AS ps
    FROM cur c FULL OUTER JOIN prev p ON c.k = p.k
),
both_known AS (SELECT * FROM j WHERE now AND before AND cs <> 'error' AND ps <> 'error'),
events AS (
    SELECT k, 'new_customer' AS event, NULL AS detail, NULL AS previous, NULL AS current
        FROM j WHERE now AND NOT before
    UNION ALL SELECT k, 'gone_from_input', NULL, NULL, NULL FROM j WHERE before AND NOT now
    UNION ALL SELECT k, 'now_in_error', NULL, ps, cs
        FROM j WHERE now AND before AND cs = 'error' AND ps <> 'error'
    UNION ALL SELECT k, 'recovered_from_error', NULL, ps, cs
        FROM j WHERE now AND before AND ps = 'error' AND cs <> 'error'
    UNION ALL SELECT k, 'became_member', NULL, pm, cm
        FROM both_known WHERE pm = 'nonMember' AND cm = 'member'
    UNION ALL SELECT k, 'became_non_member', NULL, pm, cm
        FROM both_known WHERE pm = 'member' AND cm = 'nonMember'
    UNION ALL SELECT k, 'linked_first_account', NULL, CAST(pl AS VARCHAR), CAST(cl AS VARCHAR)
        FROM both_known WHERE pl = 0 AND cl > 0
    UNION ALL SELECT k, 'lost_all_accounts', NULL, CAST(pl AS VARCHAR), CAST(cl AS VARCHAR)
        FROM both_known WHERE pl > 0 AND cl = 0
    UNION ALL SELECT a.k, 'account_added', a.com_id || ':' || a.vt_acc_no, NULL, NULL
        FROM cur_acc a JOIN both_known b ON a.k = b.k
        WHERE b.pl IS NOT NULL AND b.cl IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM prev_acc p
            WHERE p.k = a.k AND p.com_id = a.com_id AND p.vt_acc_no = a.vt_acc_no)
    UNION ALL SELECT a.k, 'account_removed', a.com_id || ':' || a.vt_acc_no, NULL, NULL
        FROM prev_acc a JOIN both_known b ON a.k = b.k
        WHERE b.pl IS NOT NULL AND b.cl IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM cur_acc c
            WHERE c.k = a.k AND c.com_id = a.com_id AND c.vt_acc_no = a.vt_acc_no)
)
SELECT k AS {key}, event, detail, previous, current, $previous_run_date::DATE AS previous_run_date
FROM events ORDER BY k, event, detail
"""


def duckdb_connection() -> Any:
    """An in-memory DuckDB that draws no progress bar on stderr (it would break the log lines)."""
    import duckdb  # noqa: PLC0415  (lazy: only --dataset runs need it)

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def changes_schema(ci_field: str) -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema(
        [
            pa.field(ci_field, pa.string(), nullable=False),
            pa.field("event", pa.string(), nullable=False),
            pa.field("detail", pa.string()),
            pa.field("previous", pa.string()),
            pa.field("current", pa.string()),
            pa.field("previous_run_date", pa.date32()),
        ],
        metadata=SCHEMA_METADATA,
    )


def compute_changes(
    current: tuple[Path, Path],
    previous: tuple[Path, Path, dt.date] | None,
    ci_field: str,
) -> Any:
    """The change feed as an Arrow table; empty when there is no earlier run to compare with."""

    schema = changes_schema(ci_field)
    if previous is None:
        return schema.empty_table()

    prev_rec, prev_acc, prev_date = previous
    with duckdb_connection() as con:
        table: Any = con.sql(
            _SQL.format(key=ci_field),
            params={
                "cur_rec": str(current[0]),
                "cur_acc": str(current[1]),
                "prev_rec": str(prev_rec),
                "prev_acc": str(prev_acc),
                "previous_run_date": prev_date.isoformat(),
            },
        ).to_arrow_table()
    return table.cast(schema).replace_schema_metadata(schema.metadata)


def previous_run(root: Path, run_date: dt.date) -> tuple[Path, Path, dt.date] | None:
    """The latest earlier night of a finished run, to compare this one with."""
    for day, _ in earlier_nights(root, "summary", run_date):
        summary = night_file(root, "summary.json", day)
        files = (
            night_file(root, "reconciled.parquet", day),
            night_file(root, "accounts.parquet", day),
        )
        finished = summary.exists() and all(f.exists() for f in files)
        if finished and json.loads(summary.read_text(encoding="utf-8")).get("state") == "done":
            return files[0], files[1], day
    return None
