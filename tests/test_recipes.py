"""docs/schema.md's recipes, run as written against six nights as BI meets them.

Every reader (DuckDB without union_by_name, pandas, polars strict, pyarrow, Spark) gets
every table with the declared columns, in order, with their types, and as many rows a
night as the night's current run says it wrote.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.dataset.changes import changes_schema
from jobs.dataset.outputs import accounts_schema, reconciled_schema, runs_schema, timeline_schema
from tests.bi_data import KEPT, SIX, TABLES, Nights, csv_folder, recipes, six_nights

RECIPES = recipes()
READERS = ("duckdb", "pandas", "polars", "pyarrow", "spark")


@pytest.fixture(scope="module")
def nights(sandbox_thread, tmp_path_factory: pytest.TempPathFactory) -> Nights:
    return six_nights(sandbox_thread, tmp_path_factory.mktemp("bi"))


@pytest.fixture(scope="module")
def csv_out(sandbox_thread, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return csv_folder(sandbox_thread, tmp_path_factory.mktemp("csv"))


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


def read_duckdb(root: Path) -> dict[str, tuple[list[tuple[str, Any]], Counter[str]]]:
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


def read_frames(reader: str, root: Path) -> dict[str, tuple[list[tuple[str, Any]], Counter[str]]]:
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


def read(reader: str, root: Path) -> dict[str, tuple[list[tuple[str, Any]], Counter[str]]]:
    return read_duckdb(root) if reader == "duckdb" else read_frames(reader, root)


def readers_table(nights: Nights, reader: str) -> dict[str, bool]:
    """For each table, whether `reader` got the declared columns and each night's rows."""
    found = read(reader, nights.root)
    return {
        table: found[table][0] == want(reader, table)
        and dict(found[table][1]) == expected_counts(nights, table)
        for table in TABLES
    }


def test_every_documented_recipe_is_tested() -> None:
    assert set(RECIPES) == {*READERS, "pandas-csv", "polars-csv"}


def test_no_recipe_or_page_globs_over_the_root() -> None:
    docs = Path(__file__).resolve().parents[1]
    for page in (docs / "README.md", *sorted((docs / "docs").glob("*.md"))):
        text = page.read_text(encoding="utf-8")
        assert "recon/**" not in text, page
        assert "ROOT/**/*.parquet` finds" not in text, page


@pytest.mark.parametrize("reader", [r for r in READERS if r != "spark"])
def test_a_reader_gets_every_table_typed_with_each_nights_rows(nights: Nights, reader: str) -> None:
    found = read(reader, nights.root)
    for table in TABLES:
        columns, counts = found[table]
        assert columns == want(reader, table), (reader, table)
        assert dict(counts) == expected_counts(nights, table), (reader, table)


def test_csv_recipes_keep_identifiers_as_text(csv_out: Path) -> None:
    raw = (csv_out / "accounts.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    com_ids = {line.split(",")[1].strip('"') for line in raw}
    assert any(c.startswith("0") for c in com_ids)
    for name in ("pandas-csv", "polars-csv"):
        frame = run_recipe(name, Path("/nowhere"), csv_out)["accounts"]
        assert set(frame["com_id"]) == com_ids, name
        assert all(len(v) == 18 for v in frame["vt_acc_no"]), name
    naive = pd.read_csv(csv_out / "accounts.csv", encoding="utf-8-sig")
    assert not set(naive["com_id"].astype(str)) & com_ids  # the control: zeros lost


def _spark_ready() -> str | None:
    if shutil.which("java") is None:
        return "no Java runtime (make test installs one with scripts/ensure-spark.sh)"
    try:
        import pyspark  # noqa: F401, PLC0415
    except ImportError:
        return "pyspark is not installed (make test installs it with scripts/ensure-spark.sh)"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    reason = _spark_ready()
    if reason:
        pytest.skip(reason)
    from pyspark.sql import SparkSession  # noqa: PLC0415

    os.environ.setdefault("PYSPARK_PYTHON", shutil.which("python") or "python3")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("member-recon-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.mark.spark
def test_spark_gets_every_table_typed_with_each_nights_rows(nights: Nights, spark: Any) -> None:
    began = time.monotonic()
    found = read("spark", nights.root)
    for table in TABLES:
        columns, counts = found[table]
        assert columns == want("spark", table), table
        assert dict(counts) == expected_counts(nights, table), table
    assert time.monotonic() - began < 120
