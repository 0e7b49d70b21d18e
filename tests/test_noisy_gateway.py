"""The real CLI against a gateway that is noisy or shared: stray 429s, broken 200s, a live app.

Each fault is one a production gateway has on a bad night; none may cost a customer or a
row. The sandbox injects them (`--fault http429:P`, `truncated:P`, `notjson:P`,
`--app-load`); figures for the night's length are measured in bench/pacing.py.
"""

from __future__ import annotations

from pathlib import Path

from jobs.sandbox.server import Fault, SandboxConfig
from tests.conftest import API_KEY, customers, job, write_csv
from tests.test_end_to_end import check_truth


def test_stray_429s_at_a_chosen_share_cost_no_customer(sandbox, tmp_path: Path) -> None:
    people = customers(150, salt="noisy")
    sandbox.sandbox.configure(faults=(Fault("http429", 0.04),))
    result = job(sandbox, write_csv(tmp_path / "in.csv", people), tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])  # every row, none in error
    summary = result.summary()
    assert summary["http_429"] == sandbox.sandbox.stats.faults["http429"] > 0
    assert summary["retries"] == summary["http_429"]  # each stray 429 was asked again, once
    assert summary["requests"] == 2 * 150 + summary["retries"]
    assert summary["rate_cuts"] == 0  # lone 429s among accepted answers are no verdict


def test_broken_200s_are_asked_again_and_cost_no_customer(sandbox, tmp_path: Path) -> None:
    people = customers(150, salt="broken")
    sandbox.sandbox.configure(faults=(Fault("truncated", 0.05), Fault("notjson", 0.05)))
    result = job(sandbox, write_csv(tmp_path / "in.csv", people), tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    faults = sandbox.sandbox.stats.faults
    assert faults["truncated"] > 0
    assert faults["notjson"] > 0
    assert result.summary()["retries"] == faults["truncated"] + faults["notjson"]


def test_a_live_app_sharing_the_quota_costs_no_customer(sandbox, tmp_path: Path) -> None:
    people = customers(120, salt="shared")
    # The gateway's 60 req/s are shared with an app whose load swings 0..30 req/s.
    sandbox.sandbox.reset(SandboxConfig(api_key=API_KEY, rate_limit=60, app_load=30, app_period=4))
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, tmp_path / "out", "--rate", "60")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    stats = sandbox.sandbox.stats
    assert stats.app_admitted > 0  # the app did take its share meanwhile
    assert result.summary()["http_429"] == stats.over_limit
