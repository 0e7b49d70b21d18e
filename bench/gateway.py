"""The gateway-limit and outage figures: how the job meets a gateway's limit and its bad minutes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import (  # noqa: E402
    Row,
    control,
    finish_job,
    make_input,
    median,
    sandbox,
    start_job,
    stats,
    wait_until,
)

SETTLED_AFTER = 5.0  # seconds: the gateway-limit figure also reports what follows them
OUTAGE_RATE = 100
OUTAGE_CUSTOMERS = 500  # 10 s of asking at 100 req/s: 3 before the outage, 7 after it


def gateway_limit_run(work: Path, limit: int, seconds: float, headers: bool, i: int) -> dict:
    """The job at `--rate 2L` against a sandbox limiting L req/s, with its counters over time."""
    path = make_input(work, int(limit * seconds / 2))
    out = work / f"g{limit}{'h' if headers else ''}-{i}"
    flags = ("--rate-limit", str(limit), *(("--limit-headers",) if headers else ()))
    with sandbox(*flags) as url:
        proc, started = start_job(
            url, path, out, "--rate", str(2 * limit), "--concurrency", "64", "--fresh"
        )
        settled = None
        if wait_until(lambda: stats(url)["requests"] > 0, proc):
            first = time.monotonic()
            while proc.poll() is None and time.monotonic() < first + SETTLED_AFTER:
                time.sleep(0.05)
            if proc.poll() is None:
                settled = (stats(url), time.monotonic() - first)
        finish_job(proc, started, out)
        seen = stats(url)
    accepted = seen["requests"] - seen["over_limit"]
    result = {
        "achieved": (accepted - 1) / seen["span_s"] / limit if seen["span_s"] else 0.0,
        "share": seen["over_limit"] / seen["requests"],
        "achieved_after": None,
        "share_after": None,
    }
    if settled is not None and seen["span_s"] > settled[1]:
        early, at = settled
        later = seen["requests"] - early["requests"]
        over = seen["over_limit"] - early["over_limit"]
        result["achieved_after"] = (later - over) / (seen["span_s"] - at) / limit
        result["share_after"] = over / later if later else 0.0
    return result


def gateway_limit_figures(
    work: Path, limits: tuple[int, ...], seconds: float, runs: int
) -> list[Row]:
    """Achieved share of the gateway's limit and share of 429s, `--rate` at twice the limit."""
    rows: list[Row] = []
    for limit in limits:
        for headers in (False, True):
            results = [gateway_limit_run(work, limit, seconds, headers, i) for i in range(runs)]
            achieved = median([r["achieved"] for r in results])
            share = median([r["share"] for r in results])
            afters = [r for r in results if r["achieved_after"] is not None]
            settled = (
                f" (after {SETTLED_AFTER:.0f} s: "
                f"{median([r['achieved_after'] for r in afters]):.1%} / "
                f"{median([r['share_after'] for r in afters]):.2%})"
                if afters
                else ""
            )
            stated = "stated in headers" if headers else "not stated"
            name = f"gateway {limit} req/s ({stated}), --rate {2 * limit}, {seconds:.0f} s"
            rows.append(
                (
                    f"{name}: achieved / 429 share (median of {runs})",
                    f"{achieved:.1%} / {share:.2%}{settled}",
                    ">= 90% / <= 5%",
                    achieved >= 0.9 and share <= 0.05,
                )
            )
    return rows


def outage_run(work: Path, concurrency: int, down: float, i: int) -> dict:
    """A `down`-second html outage at 100 req/s, started once the job is under way."""
    path = make_input(work, OUTAGE_CUSTOMERS)
    out = work / f"o{concurrency}-{i}"
    with sandbox() as url:
        proc, started = start_job(
            url, path, out, "--rate", str(OUTAGE_RATE), "--concurrency", str(concurrency), "--fresh"
        )
        recovery = None
        if wait_until(lambda: stats(url)["requests"] >= 3 * OUTAGE_RATE, proc, 0.05):
            ends = control(url, f"/_sandbox/outage?seconds={down}&kind=html") + down
            answered = sum(stats(url)["answered"].values())
            while proc.poll() is None and time.monotonic() < ends - 0.2:
                time.sleep(0.05)
            if wait_until(lambda: sum(stats(url)["answered"].values()) > answered, proc):
                recovery = time.monotonic() - ends
        run = finish_job(proc, started, out, exits=None)
        seen = stats(url)
    return {
        "exit": run.exit_code,
        "error": run.summary.get("error"),
        "in_outage": seen["in_outage"],
        "recovery": recovery,
    }


def outage_figures(work: Path, concurrencies: tuple[int, ...], down: float, runs: int) -> list[Row]:
    rows: list[Row] = []
    for concurrency in concurrencies:
        results = [outage_run(work, concurrency, down, i) for i in range(runs)]
        where = f"outage {down:.0f} s (html) at {OUTAGE_RATE} req/s, --concurrency {concurrency}"
        exits = sorted({r["exit"] for r in results})
        errors = [r["error"] for r in results]  # None: the run wrote no summary
        worst = "?" if None in errors else str(max(errors))
        rows.append(
            (
                f"{where}: exit code / customers in error (all {runs} runs)",
                f"{'/'.join(map(str, exits))} / {worst}",
                "0 / 0",
                exits == [0] and worst == "0",
            )
        )
        sent = median([r["in_outage"] for r in results])
        rows.append(
            (
                f"{where}: requests sent into it (median of {runs})",
                f"{sent:.0f} (most {max(r['in_outage'] for r in results)})",
                "<= 100",
                sent <= 100,
            )
        )
        recoveries = [r["recovery"] for r in results if r["recovery"] is not None]
        rows.append(
            (
                f"{where}: seconds from its end to the first answer (median of {runs})",
                f"{median(recoveries):.1f} s" if recoveries else "none",
                "",
                bool(recoveries),
            )
        )
    return rows
