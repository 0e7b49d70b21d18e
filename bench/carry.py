"""What planning a --max-age night costs a big base: read the last night back, carry, rank.

    bench/carry.py [--customers 1000000] [--accounts 1.5]

Writes a finished night of N customers (and N x accounts accounts) as the job does, and
a progress store holding tonight's N customers; then, in a fresh process, times the
job's read of the night (`jobs.dataset.earlier.latest_answers`) and the engine's plan
(`batch.run.carry.plan_night`), and reports that process's peak RSS (its VmHWM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from batch.run.carry import plan_night  # noqa: E402
from batch.store.folder import STORE_NAME  # noqa: E402
from batch.store.items import NewItem  # noqa: E402
from batch.store.progress_store import ProgressStore  # noqa: E402
from jobs.dataset.earlier import latest_answers, question_of  # noqa: E402
from jobs.dataset.outputs import accounts_schema, reconciled_schema  # noqa: E402
from jobs.sandbox.truth import synthetic_ci  # noqa: E402
from tests.fake_job import QuietLog  # noqa: E402

NIGHT = dt.date(2026, 11, 10)
TONIGHT = dt.date(2026, 11, 14)  # four run dates later: everything is young at --max-age 7


def build(root: Path, customers: int, accounts_each: float) -> None:
    """The last night's reconciled and accounts files, and tonight's store of customers."""

    cis = [synthetic_ci(i, "carry") for i in range(customers)]
    at = dt.datetime(2026, 11, 10, 1, tzinfo=dt.UTC)
    n = customers
    reconciled = {
        "ci": cis,
        "kor_name": ["홍길동"] * n,
        "membership": ["member"] * n,
        "linked_accounts": [1] * n,
        "is_non_member": [False] * n,
        "no_linked_account": [False] * n,
        "status": ["linked"] * n,
        "next_action": ["none"] * n,
        "error": pa.nulls(n, pa.string()),
        "terms_expire_date": pa.nulls(n, pa.date32()),
        "checked_at": pa.array([at] * n, pa.timestamp("us", tz="UTC")),
        "asked_on": pa.array([NIGHT] * n, pa.date32()),
    }
    owners = [cis[i % n] for i in range(int(n * accounts_each))]
    accounts = {
        "ci": owners,
        "com_id": ["00003"] * len(owners),
        "vt_acc_no": [f"7777{i:014d}" for i in range(len(owners))],
        "vt_acc_alias": ["주식"] * len(owners),
    }
    for table, columns, schema in (
        ("reconciled", reconciled, reconciled_schema()),
        ("accounts", accounts, accounts_schema()),
    ):
        folder = root / table / f"run_date={NIGHT}"
        folder.mkdir(parents=True)
        # Row groups of 10,000, as the job writes them (a batch of the store at a time).
        table_file = folder / f"{table}.parquet"
        pq.write_table(pa.table(columns, schema=schema), table_file, row_group_size=10_000)
    summary = root / "summary" / f"run_date={NIGHT}"
    summary.mkdir(parents=True)
    (summary / "summary.json").write_text(json.dumps({"state": "done"}))
    work = root / ".work" / TONIGHT.isoformat()
    work.mkdir(parents=True, mode=0o700)
    store = ProgressStore(work / STORE_NAME)
    question = question_of("홍길동", None)
    for start in range(0, n, 20_000):
        items = [
            NewItem(i + 2, cis[i], {"ci": cis[i], "kor_name": "홍길동"}, question)
            for i in range(start, min(n, start + 20_000))
        ]
        store.ingest_chunk(items, [], rows=start + len(items))
    store.close()


def measure(root: Path) -> None:
    """In this (fresh) process: read the night back and plan tonight; print the figures."""
    log = QuietLog()
    store = ProgressStore(root / ".work" / TONIGHT.isoformat() / STORE_NAME)
    began = time.perf_counter()
    earlier = latest_answers(root, TONIGHT, "ci", None, log)
    plan = plan_night(store, earlier, TONIGHT, 7, log)
    seconds = time.perf_counter() - began
    store.close()
    # The mm's own high-water mark: ru_maxrss would also hold the builder's size at the
    # fork, which Linux carries across exec.
    status = Path("/proc/self/status").read_text()
    peak_kib = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
    )
    figures = {"seconds": round(seconds, 1), "peak_mib": peak_kib // 1024, **plan.as_dict()}
    figures["page_ms"] = page_after_failures(root, plan.carried + plan.to_ask)
    print(json.dumps(figures))


def page_after_failures(root: Path, customers: int) -> float:
    """ms for a page of open items when a tenth of the first half failed behind the cursor."""
    folder = root / "paging"
    folder.mkdir(mode=0o700)
    store = ProgressStore(folder / STORE_NAME)
    payload = {"ci": "x" * 88, "kor_name": "홍길동"}
    for start in range(0, customers, 20_000):
        end = min(customers, start + 20_000)
        items = [NewItem(i + 2, f"k{i}", payload) for i in range(start, end)]
        store.ingest_chunk(items, [], rows=end)
    half = customers // 2
    store.record([(seq, "error", {"length": None}, None) for seq in range(10, half, 10)])
    began = time.perf_counter()
    for _ in range(100):
        store.open_items((0, 0, half), 64)
    store.close()
    return round((time.perf_counter() - began) * 10, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=float, default=1.5, help="accounts per customer")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure:
        measure(options.measure)
        return
    with tempfile.TemporaryDirectory(prefix="member-recon-carry-") as folder:
        root = Path(folder)
        began = time.perf_counter()
        build(root, options.customers, options.accounts)
        print(f"built {options.customers:,} customers in {time.perf_counter() - began:.0f} s")
        command = [sys.executable, __file__, "--measure", str(root)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        _, status, _ = os.wait4(proc.pid, 0)
        figures = json.loads(proc.stdout.read() if proc.stdout else "{}")
        rss = figures["peak_mib"]
        print(
            f"read back and planned {options.customers:,} customers: {figures['seconds']} s, "
            f"peak RSS {rss} MiB; carried {figures['carried']:,}, to ask {figures['to_ask']:,} "
            f"(exit {os.waitstatus_to_exitcode(status)})"
        )
        print(f"a page of 64 open items past tonight's failures: {figures['page_ms']} ms")


if __name__ == "__main__":
    main()
