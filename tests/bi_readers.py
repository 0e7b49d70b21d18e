"""Each documented reader on each table of a dataset: the declared columns and types, and
each night's rows as the night's current run wrote them.

    .venv/bin/python -m tests.bi_readers

builds the six-night dataset of `tests.bi_data` against an in-process sandbox and prints
the readers' table (reader × table × ok); `-m tests.bi_readers ROOT` reads a dataset
that exists.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.dataset.changes import changes_schema
from jobs.dataset.outputs import accounts_schema, reconciled_schema, runs_schema, timeline_schema
from tests.bi_data import KEPT, SIX, TABLES, Nights, recipes

RECIPES = recipes()
READERS = ("duckdb", "pandas", "polars", "pyarrow", "spark")
Found = dict[str, tuple[list[tuple[str, Any]], Counter[str]]]


def run_recipe(name: str, root: Path, out: Path | None = None) -> dict[str, Any]:
    code = RECIPES[name].replace("/data/recon", str(root))
    if out is not None:
        code = code.replace("/data/out", str(out))
    namespace: dict[str, Any] = {}
    exec(compile(code, f"docs/schema.md ({name})", "exec"), namespace)
    return namespace


def declared(table: str) -> pa.Schema:
    """The table's columns as docs/schema.md declares them; `run_date` from the folders last."""
    schema = {
        "reconciled": reconciled_schema("ci", KEPT),
        "accounts": accounts_schema(),
        "changes": changes_schema("ci"),
        "timeline": timeline_schema(),
    }.get(table)
    if schema is None:
        return runs_schema()
    return schema.append(pa.field("run_date", pa.date32()))


def expected_counts(nights: Nights, table: str) -> dict[str, int]:
    """Rows a night, as the night's current run (its summary) wrote them."""
    if table == "runs":  # one row per attempt: the fourth night was run twice
        return {day: 2 if day == SIX[3] else 1 for day in SIX}
    if table == "timeline":  # no summary figure: the night's own file says
        return {
            day: pq.ParquetFile(
                nights.root / table / f"run_date={day}" / "timeline.parquet"
            ).metadata.num_rows
            for day in SIX
        }
    summaries = {day: nights.summary(day) for day in SIX}
    found = {
        day: {
            "reconciled": summary["customers"],
            "accounts": summary["accounts"],
            "changes": sum(summary.get("changes", {}).values()),
        }[table]
        for day, summary in summaries.items()
    }
    return {day: n for day, n in found.items() if n}


def duckdb_type(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP WITH TIME ZONE"
    return {"string": "VARCHAR", "int64": "BIGINT", "bool": "BOOLEAN", "date32[day]": "DATE"}.get(
        str(kind), "DOUBLE"
    )


def polars_type(kind: pa.DataType) -> Any:
    if pa.types.is_timestamp(kind):
        return pl.Datetime("us", "UTC")
    return {"string": pl.String, "int64": pl.Int64, "bool": pl.Boolean, "date32[day]": pl.Date}.get(
        str(kind), pl.Float64
    )


def spark_type(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "TimestampType()"
    names = {"string": "StringType()", "int64": "LongType()", "bool": "BooleanType()"}
    return names.get(str(kind), "DateType()" if pa.types.is_date(kind) else "DoubleType()")


def read_duckdb(root: Path) -> Found:
    found = {}
    with duckdb.connect() as con:
        for statement in RECIPES["duckdb"].replace("/data/recon", str(root)).split(";")[:-1]:
            con.execute(statement)
        for table in TABLES:
            columns = con.execute(
                f"select column_name, column_type from (describe {table})"
            ).fetchall()
            counts = con.execute(f"select run_date::varchar, count(*) from {table} group by 1")
            found[table] = (columns, Counter(dict(counts.fetchall())))
    return found


def read_frames(reader: str, root: Path) -> Found:
    made = run_recipe(reader, root)
    found = {}
    for table in TABLES:
        frame = made[table]
        if reader == "pandas":
            columns = list(frame.dtypes.items())
            days = [str(d) for d in frame["run_date"]]
        elif reader == "polars":
            columns = list(frame.schema.items())
            days = [str(d) for d in frame["run_date"]]
        elif reader == "pyarrow":
            columns = [(f.name, f.type) for f in frame.schema]
            days = [str(d) for d in frame.column("run_date").to_pylist()]
        else:  # spark
            columns = [(f.name, repr(f.dataType)) for f in frame.schema.fields]
            days = [
                str(r[0]) for r in frame.groupBy("run_date").count().collect() for _ in range(r[1])
            ]
        found[table] = (columns, Counter(days))
    return found


def want(reader: str, table: str) -> list[tuple[str, Any]]:
    typed = {
        "duckdb": duckdb_type,
        "pandas": pd.ArrowDtype,
        "polars": polars_type,
        "pyarrow": lambda kind: kind,
        "spark": spark_type,
    }[reader]
    return [(f.name, typed(f.type)) for f in declared(table)]


def read(reader: str, root: Path) -> Found:
    return read_duckdb(root) if reader == "duckdb" else read_frames(reader, root)


def readers_table(
    nights: Nights, readers: tuple[str, ...] = READERS
) -> list[tuple[str, str, bool]]:
    """(reader, table, ok) for each reader and table of `nights`."""
    rows = []
    for reader in readers:
        try:
            found = read(reader, nights.root)
        except Exception as exc:  # a reader that cannot read the dataset at all
            print(f"{reader}: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
            rows += [(reader, table, False) for table in TABLES]
            continue
        for table in TABLES:
            columns, counts = found[table]
            ok = columns == want(reader, table) and dict(counts) == expected_counts(nights, table)
            rows.append((reader, table, ok))
    return rows


def _spark() -> Any:
    from pyspark.sql import SparkSession  # noqa: PLC0415

    return (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )


def main(argv: list[str]) -> None:
    from jobs.sandbox.server import Sandbox, SandboxConfig, SandboxThread  # noqa: PLC0415
    from tests.bi_data import six_nights  # noqa: PLC0415
    from tests.conftest import API_KEY  # noqa: PLC0415

    if argv:
        root = Path(argv[0])
        nights = Nights(root, root / "none.duckdb", None, None)  # type: ignore[arg-type]
    else:
        server = SandboxThread(Sandbox(SandboxConfig(api_key=API_KEY))).start()
        try:
            nights = six_nights(server, Path(tempfile.mkdtemp(prefix="bi-readers-")))
        finally:
            server.stop()
    _spark().sparkContext.setLogLevel("ERROR")
    print("| reader | " + " | ".join(TABLES) + " |")
    print("|---" * (len(TABLES) + 1) + "|")
    rows = readers_table(nights)
    for reader in READERS:
        marks = ["ok" if ok else "FAIL" for r, _, ok in rows if r == reader]
        print(f"| {reader} | " + " | ".join(marks) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
