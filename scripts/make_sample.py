"""Regenerate data/customers_sample.csv: synthetic customers (never real CI) and some bad rows."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.sandbox.server import synthetic_ci, synthetic_name


def main() -> None:
    rows: list[list[str]] = []
    for n in range(300):
        ci = synthetic_ci(n, "sample")
        rows.append([ci, synthetic_name(ci), f"C{n:06d}"])
    rows[10][0] = f"  {rows[10][0]} "  # padded: trimmed, still valid
    rows[20][1] = ""  # empty name
    rows[30][1] = "가나다라마바사아자차카"  # 11 characters
    rows[40][0] = rows[40][0][:87]  # the seed page's 87-character sample shape
    rows[50][0] = "!" + rows[50][0][1:]  # not base64
    rows[60][0] = ""  # empty CI
    rows.append([rows[5][0], "홍길동", "C900001"])  # a repeated CI
    rows.append([rows[6][0], rows[6][1], "C900002"])  # an exact duplicate
    with Path("data/customers_sample.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["ci", "kor_name", "customer_no"])
        writer.writerows(rows)
        out.write("too,many,fields,here\n")


if __name__ == "__main__":
    main()
