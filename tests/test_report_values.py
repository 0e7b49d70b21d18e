"""The report tells the truth: what each chart drew, read back in Chromium, is the summary."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from jobs.report import charts
from jobs.report.page import write_report
from jobs.sandbox.server import Fault
from tests.conftest import customers, job, write_csv
from tests.test_report import render


def drawn(dom: str) -> dict[str, dict[str, Any]]:
    """Each chart's title and what it drew (the page keeps it on the chart's element)."""
    specs = re.search(r"const specs = (\{.*?\});\n", dom, re.DOTALL)
    assert specs
    titles = {name: spec.get("title") for name, spec in json.loads(specs.group(1)).items()}
    found = {}
    for slot in re.finditer(r'<div [^>]*id="(chart\d+)"[^>]*>', dom):
        values = re.search(r'data-drawn="([^"]*)"', slot.group(0))
        assert values, f"{slot.group(1)} was not drawn"
        found[titles[slot.group(1)]] = json.loads(html.unescape(values[1]))
    return found


def bars(chart: dict[str, Any], key: str) -> dict[str, int]:
    return {bar[key]: bar["n"] for bar in chart["rect"]}


def numbers(chart: dict[str, Any]) -> list[str]:
    return [t for t in chart["ticks"] if re.fullmatch(r"[\d,]+", t)]


def svg_texts(dom: str) -> list[str]:
    """Every text the charts show, line by line."""
    return [html.unescape(t) for t in re.findall(r"<(?:text|tspan)[^>]*>([^<]*)<", dom)]


def test_every_chart_draws_the_summary_counts(sandbox, tmp_path: Path) -> None:
    people = customers(40)
    sandbox.sandbox.configure(
        faults=(
            Fault(
                "unknown_result",
                1.0,
                api="register/search",
                cis=frozenset(c for c, _ in people[:3]),
            ),
            Fault(
                "unknown_shape", 1.0, api="consent/search", cis=frozenset(c for c, _ in people[3:4])
            ),
        )
    )
    rows = [*people, ("short", "홍길동"), ("", "이름"), (people[5][0], "다른이름")]
    path = write_csv(tmp_path / "in.csv", rows)
    result = job(sandbox, path, tmp_path / "run", "--max-error-rate", "1")
    assert result.exit_code == 0, result.stderr
    summary = result.summary()
    dom, _ = render(write_report(tmp_path / "run"), tmp_path)
    shown = drawn(dom)
    status = shown["Customers by status · 상태별 고객"]
    assert bars(status, "status") == {k: summary[k] for k in charts.STATUS}
    actions = shown["Next actions · 다음 조치"]
    assert bars(actions, "status") == {k: summary[k] for k in charts.STATUS}
    errors = shown["Errors by reason · 오류 사유"]
    assert bars(errors, "reason") == summary["errors_by_reason"]  # one bar per reason
    rejects = shown["Rejected rows by reason · 제외 사유"]
    assert sum(bars(rejects, "reason").values()) == summary["rejected"]
    assert bars(rejects, "reason") == summary["input_read"]["rejects_by_reason"]
    for chart in (status, actions, errors, rejects):  # counts: whole, distinct, rising ticks
        ticks = [int(t.replace(",", "")) for t in numbers(chart)]
        assert ticks == sorted(set(ticks)), ticks
        assert ticks[0] == 0
        assert ticks[-1] >= max(bar["n"] for bar in chart["rect"])
    rate = shown["Request rate over the run · 시간대별 초당 요청"]
    assert rate["symbol"]  # at least one sampled point per series
    texts = svg_texts(dom)
    assert not [t for t in texts if t.endswith("…")]  # no label or legend entry cut short
    steps = re.search(r"<h2>Next steps.*?</ul>", dom, re.DOTALL)
    assert steps
    assert f"{summary['rejected']} input rows were rejected" in steps.group(0)
    assert str(tmp_path / "run" / "rejects.csv") in steps.group(0)
    assert f"next_action = portal_signup in {tmp_path / 'run' / 'reconciled.parquet'}" in steps[0]


def test_a_run_sampled_once_still_has_its_timeline(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(5))
    result = job(sandbox, path, tmp_path / "run", "--format", "xlsx")
    assert result.exit_code == 0, result.stderr
    import pyarrow.parquet as pq  # noqa: PLC0415

    assert pq.read_table(tmp_path / "run" / "timeline.parquet").num_rows == 1
    page = write_report(tmp_path / "run")
    text = page.read_text(encoding="utf-8")
    assert "No request timeline was kept" not in text
    dom, _ = render(page, tmp_path)
    rate = drawn(dom)["Request rate over the run · 시간대별 초당 요청"]
    assert {point["series"] for point in rate["symbol"]} == set(charts.SERIES.values())
    assert "the sheet '포탈 가입 안내 (portal_signup)'" in dom
    assert "the sheet '계좌 연결 안내 (link_account)'" in dom


def test_reasons_that_start_alike_get_a_bar_each_with_the_whole_text() -> None:
    head = "register/search: HTTP 503 Service Unavailable from the gateway, after 1 attempt"
    reasons = {f"{head}; consent/search answered": 156, f"{head}; consent/search timed out": 26}
    spec = charts.vega_lite(charts.reason_bars(reasons, "Errors"))
    values = (
        spec["layer"][0]["data"]["values"] if "data" in spec["layer"][0] else spec["data"]["values"]
    )
    assert {v["reason"]: v["n"] for v in values} == reasons
    assert len({v["label"] for v in values}) == 2
    assert all(v["label"].replace("\n", " ") == v["reason"] for v in values)  # wrapped, whole


def test_count_ticks_are_whole_numbers() -> None:
    assert charts.whole_ticks(1) == [0, 1]
    assert charts.whole_ticks(2) == [0, 1, 2]
    assert charts.whole_ticks(9) == [0, 2, 4, 6, 8, 10]
    assert charts.whole_ticks(185) == [0, 50, 100, 150, 200]
