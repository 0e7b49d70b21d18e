"""docs/schema.md's recipes, run as written against six nights as BI meets them.

Every reader (DuckDB without union_by_name, pandas, polars strict, pyarrow, Spark) gets
every table with the declared columns, in order, with their types, and as many rows a
night as the night's current run says it wrote.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.bi_data import KEPT, SIX, TABLES, Nights, csv_folder, six_nights
from tests.bi_readers import READERS, RECIPES, expected_counts, read, run_recipe, want
from tests.change_rules import expected_changes, night
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def nights(sandbox_thread, tmp_path_factory: pytest.TempPathFactory) -> Nights:
    return six_nights(sandbox_thread, tmp_path_factory.mktemp("bi"))


@pytest.fixture(scope="module")
def csv_out(sandbox_thread, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return csv_folder(sandbox_thread, tmp_path_factory.mktemp("csv"))


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


def test_a_night_with_another_kept_column_is_refused_until_migrate(nights: Nights) -> None:
    root, both = nights.root, ",".join(KEPT)
    assert nights.refused.exit_code == 2
    message = nights.refused.stderr
    assert f"--keep-columns {both} differs from the 4 nights in {root}" in message
    assert "adds 지점" in message
    assert f"run: member-recon migrate {root} --keep-columns {both}" in message
    assert nights.migrated.stdout.count("+지점 (null)") == 4  # one line a night rewritten
    with duckdb.connect() as con:
        kept = con.execute(
            f"select run_date::varchar, count(*), count(고객번호), count(지점) from read_parquet("
            f"'{root}/reconciled/*/*.parquet', hive_partitioning = true) group by 1 order by 1"
        ).fetchall()
        sunk = con.execute(
            f"attach '{nights.sink}' as sink (read_only); select run_date::varchar, count(*), "
            "count(고객번호), count(지점) from sink.reconciled group by 1 order by 1"
        ).fetchall()
    # Before the migration, 지점 is null; after it, kept. The sink gained it the same way.
    assert kept == sunk == [(d, n, n, n if d >= SIX[4] else 0) for d, n, _, _ in kept]
    assert [d for d, *_ in kept] == list(SIX)


def test_each_night_has_one_current_run_and_the_report_shows_it(nights: Nights) -> None:
    runs = pq.read_table(nights.root / "runs" / "runs.parquet").to_pylist()
    current = {str(r["run_date"]): r for r in runs if r["current"]}
    assert sorted(current) == list(SIX)
    for day, row in current.items():
        summary = nights.summary(day)
        assert (row["run_id"], row["customers"]) == (summary["run_id"], summary["customers"])
    rerun = [r for r in runs if str(r["run_date"]) == SIX[3]]
    assert [r["current"] for r in rerun] == [False, True]  # the --fresh rerun is current
    with duckdb.connect() as con:
        sunk = con.execute(
            f"attach '{nights.sink}' as sink (read_only); select run_date::varchar, count(*) "
            "filter (where current) from sink.runs group by 1 order by 1"
        ).fetchall()
    assert sunk == [(day, 1) for day in SIX]
    made = run_cli(["report", str(nights.root)])
    assert made.exit_code == 0, made.stderr
    rows = report_rows((nights.root / "report.html").read_text(encoding="utf-8"))
    fourth = rows[SIX[3]]
    assert fourth["runs"] == "2"
    assert fourth["requests"] == str(current[SIX[3]]["requests"])
    assert fourth["all runs' requests"] == str(sum(r["requests"] for r in rerun))
    assert fourth["error"] == str(nights.summary(SIX[3])["error"]) == "2"


def report_rows(page: str) -> dict[str, dict[str, str]]:
    """The report's nights table: night -> column -> cell text."""
    table = page[page.index("Nights · 실행 목록") :]
    heads = re.findall(r"<th>(.*?)</th>", table[: table.index("</thead>")])
    rows = re.findall(r"<tr>(<td>.*?)</tr>", table[: table.index("</table>")])
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    return {c[0]: dict(zip(heads, c, strict=True)) for c in cells}


def test_the_change_feed_sees_through_errors_every_night(nights: Nights) -> None:
    root = nights.root
    for at, day in enumerate(SIX[1:], start=1):
        frame = pd.read_parquet(night(root, "changes", day))
        got = {(r.ci, r.event, None if pd.isna(r.detail) else r.detail) for r in frame.itertuples()}
        assert got == expected_changes(root, list(reversed(SIX[:at])), day), day
    back = nights.in_error[SIX[1]]  # in error on the second night, answered on the third
    third = pd.read_parquet(night(root, "changes", SIX[2]))
    theirs = third[third.ci.isin(back)]
    assert set(theirs.query("event == 'recovered_from_error'").ci) == back
    seen_through = theirs.query("event != 'recovered_from_error'")
    assert len(seen_through)  # the salts change answers: some of them changed across the error
    assert set(seen_through.previous_run_date.astype(str)) == {SIX[0]}


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
