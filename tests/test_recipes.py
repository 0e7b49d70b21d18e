"""docs/schema.md's recipes, run as written against a three-night dataset: types survive."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.bi_data import DAYS, PEOPLE, csv_folder, recipes, three_nights

RECIPES = recipes()


@pytest.fixture(scope="module")
def root(sandbox_thread, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return three_nights(sandbox_thread, tmp_path_factory.mktemp("bi"))


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


def truth(root: Path) -> tuple[int, int, str]:
    """Rows per night in reconciled and accounts, and a com_id with its leading zeros."""
    accounts = pq.read_table(root / "accounts" / f"run_date={DAYS[0]}" / "accounts.parquet")
    com_ids = set(accounts.column("com_id").to_pylist())
    assert any(c.startswith("0") for c in com_ids)
    return PEOPLE, accounts.num_rows, min(com_ids)


def test_every_documented_recipe_is_tested() -> None:
    assert set(RECIPES) == {"duckdb", "pandas", "polars", "spark", "pandas-csv", "polars-csv"}


def test_the_glob_over_the_root_finds_each_customer_once_a_night(root: Path) -> None:
    with duckdb.connect() as con:
        rows, files = con.execute(
            f"select count(*), count(distinct filename) from read_parquet("
            f"'{root}/**/*.parquet', union_by_name=true, filename=true) where kor_name is not null"
        ).fetchone()
    assert (rows, files) == (PEOPLE * len(DAYS), len(DAYS))
    assert polars_rows(root) == PEOPLE * len(DAYS)


def polars_rows(root: Path) -> int:
    every = pl.scan_parquet(f"{root}/**/reconciled.parquet", hive_partitioning=False)
    return int(every.select(pl.len()).collect().item())


def test_duckdb_recipe(root: Path) -> None:
    _, accounts, com_id = truth(root)
    with duckdb.connect() as con:
        for statement in RECIPES["duckdb"].replace("/data/recon", str(root)).split(";")[:-1]:
            last = con.execute(statement)
        by_night = last.fetchall()
        assert {str(day) for day, _, _ in by_night} == set(DAYS)
        assert sum(n for _, _, n in by_night) == PEOPLE * len(DAYS)
        types = dict(
            con.execute("select column_name, column_type from (describe reconciled)").fetchall()
        )
        assert types["run_date"] == "DATE"
        assert types["checked_at"] == "TIMESTAMP WITH TIME ZONE"
        assert types["terms_expire_date"] == "DATE"
        got = con.execute(
            "select count(*), typeof(any_value(com_id)) from accounts where run_date = $d",
            {"d": dt.date.fromisoformat(DAYS[0])},
        ).fetchone()
        assert got == (accounts, "VARCHAR")
        assert con.execute(
            "select count(*) from accounts where com_id = $c", {"c": com_id}
        ).fetchone()[0]
        assert con.execute("select count(*) from runs").fetchone() == (len(DAYS),)


def test_pandas_recipe(root: Path) -> None:
    _, accounts, com_id = truth(root)
    found = run_recipe("pandas", root)
    reconciled, account_frame = found["reconciled"], found["accounts"]
    assert len(reconciled) == PEOPLE * len(DAYS)
    assert {type(d) for d in reconciled["run_date"]} == {dt.date}
    assert sorted({d.isoformat() for d in reconciled["run_date"]}) == list(DAYS)
    assert str(reconciled["checked_at"].dtype).startswith("datetime64")
    assert "UTC" in str(reconciled["checked_at"].dtype)
    assert (account_frame["run_date"] == dt.date.fromisoformat(DAYS[0])).sum() == accounts
    assert com_id in set(account_frame["com_id"])
    assert pd.api.types.is_string_dtype(account_frame["vt_acc_no"])
    assert len(found["runs"]) == len(DAYS)


def test_polars_recipe(root: Path) -> None:
    _, accounts, com_id = truth(root)
    found = run_recipe("polars", root)
    reconciled, account_frame = found["reconciled"], found["accounts"]
    assert reconciled.height == PEOPLE * len(DAYS)
    assert reconciled.schema["run_date"] == pl.Date
    assert reconciled.schema["linked_accounts"] == pl.Int64
    assert account_frame.schema["com_id"] == pl.String
    assert (
        account_frame.filter(pl.col("run_date") == dt.date.fromisoformat(DAYS[0])).height
        == accounts
    )
    assert com_id in set(account_frame["com_id"])
    assert found["runs"].height == len(DAYS)


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
def test_spark_recipe(root: Path, spark: Any) -> None:
    from pyspark.sql.types import DateType, StringType, TimestampType  # noqa: PLC0415

    _, accounts, com_id = truth(root)
    began = time.monotonic()
    found = run_recipe("spark", root)
    reconciled, account_frame = found["reconciled"], found["accounts"]
    assert reconciled.count() == PEOPLE * len(DAYS)
    assert isinstance(reconciled.schema["run_date"].dataType, DateType)
    assert isinstance(reconciled.schema["checked_at"].dataType, TimestampType)
    assert isinstance(account_frame.schema["com_id"].dataType, StringType)
    first = account_frame.where(account_frame.run_date == dt.date.fromisoformat(DAYS[0]))
    assert first.count() == accounts
    assert account_frame.where(account_frame.com_id == com_id).count() > 0
    assert found["runs"].count() == len(DAYS)
    assert time.monotonic() - began < 120
