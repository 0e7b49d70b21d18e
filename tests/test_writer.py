"""Output tables: what an analyst reads back, and what writing them costs the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batch.outputs.writer import TableWriter

SCHEMA = pa.schema([("ci", pa.string()), ("status", pa.string())])
ROWS = [{"ci": "a", "status": "linked"}, {"ci": "b", "status": None}]


def test_parquet_and_csv_hold_the_rows_written(tmp_path: Path) -> None:
    with TableWriter(tmp_path / "t.parquet", SCHEMA, "parquet", ["status"]) as parquet:
        parquet.write(ROWS)
    with TableWriter(tmp_path / "t.csv", SCHEMA, "csv") as csv:
        csv.write(ROWS)
    assert pq.read_table(tmp_path / "t.parquet").to_pylist() == ROWS
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")
    assert text.startswith("\ufeff")  # Excel reads Korean as UTF-8 only with the BOM
    assert text.splitlines()[1:] == ['"a","linked"', '"b",']


def test_writing_does_not_import_pandas_and_pandas_still_reads_the_output(tmp_path: Path) -> None:
    # A fresh interpreter: this test process has imported pandas already.
    script = f"""
import sys
from pathlib import Path
from jobs.cli.tuning import skip_pandas_probe
skip_pandas_probe()  # as the command line does at its entry, before any table is written
import pyarrow as pa, pyarrow.parquet as pq
from batch.outputs.writer import TableWriter
path = Path({str(tmp_path / "t.parquet")!r})
with TableWriter(path, pa.schema([("ci", pa.string())]), "parquet") as out:
    out.write([{{"ci": "a"}}])
print("pandas" in sys.modules)
print(pq.read_table(path).to_pandas()["ci"].tolist())
"""
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert run.stdout.split("\n")[:2] == ["False", "['a']"]
