"""openpyxl against python-calamine on one .xlsx: seconds and peak memory to read every row.

    .venv/bin/python bench/sheets.py [--rows 100000]

Each reader runs in a process of its own (peak RSS is per process). The sheet has a
synthetic CI, a name, a customer number formatted `00000000` and a date per row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

READ = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
began, rows = time.perf_counter(), 0
if kind == "openpyxl, values only (before)":
    import openpyxl
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
elif kind == "calamine, values only":
    import python_calamine
    book = python_calamine.CalamineWorkbook.from_path(path)
    rows = sum(1 for _ in book.get_sheet_by_index(0).iter_rows())
else:
    from pathlib import Path
    from batch.inputs.sheets import WorkbookReader
    book = WorkbookReader(Path(path))
    book.streams = kind.startswith("openpyxl")
    if not book.streams:
        import python_calamine
        book._book = python_calamine.CalamineWorkbook.from_path(path)
    rows = sum(1 for _ in book.rows(book.sheet_names[0]))
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mib": peak}))
"""
KINDS = (
    "openpyxl, values only (before)",
    "openpyxl, as displayed (batch/inputs/sheets.py)",
    "calamine, values only",
    "calamine, as displayed (batch/inputs/sheets.py)",
)


def make(path: Path, rows: int) -> None:
    import openpyxl  # noqa: PLC0415
    from openpyxl.cell import WriteOnlyCell  # noqa: PLC0415

    from jobs.sandbox.server import synthetic_ci, synthetic_name  # noqa: PLC0415

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("고객")
    sheet.append(["customer_no", "ci", "kor_name", "joined"])
    for n in range(rows):
        ci = synthetic_ci(n, "bench")
        number = WriteOnlyCell(sheet, value=n + 1)
        number.number_format = "00000000"
        joined = WriteOnlyCell(sheet, value=dt.date(1960, 1, 1) + dt.timedelta(days=n % 20_000))
        joined.number_format = "YYYY-MM-DD"
        sheet.append([number, ci, synthetic_name(ci), joined])
    book.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.xlsx"
        make(path, rows)
        print(f"| reader, {rows:,} rows of .xlsx | seconds | peak RSS |")
        print("|---|---|---|")
        for kind in KINDS:
            done = subprocess.run(
                [sys.executable, "-c", READ, kind, str(path)],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            figures = json.loads(done.stdout)
            assert figures["rows"] == rows + 1, figures
            print(f"| {kind} | {figures['seconds']:.2f} | {figures['peak_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
