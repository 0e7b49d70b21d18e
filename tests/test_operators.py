"""What operators and analysts see: config files, progress, logs, pseudonyms, xlsx, dry runs."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from jobs.privacy import pseudonym
from jobs.sandbox.server import Fault
from tests.conftest import (
    API_KEY,
    ROOT,
    CliResult,
    base_args,
    customers,
    job,
    run_cli,
    write_csv,
)

PEOPLE = customers(40)


def dry_run(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> CliResult:
    path = write_csv(tmp_path / "in.csv", PEOPLE)
    args = ["run", str(path), "--dry-run", "--out", str(tmp_path / "out"), *extra]
    result = run_cli(args, {"KOSCOM_COM_ID": "F0995", "KOSCOM_SRV_ID": "297", **(env or {})})
    assert result.exit_code == 0, result.stderr
    return result


def rate_of(result: CliResult) -> float:
    """The rate a dry run estimated its duration with: 40 customers, 2 requests each."""
    seconds = re.search(r"estimated_duration_s\s+([\d.]+)", result.stdout)
    assert seconds, result.stdout
    return 80 / float(seconds.group(1))


@pytest.mark.parametrize(
    ("file_rate", "env_rate", "flag_rate", "winner"),
    [
        (None, None, None, 20),  # the default
        (10, None, None, 10),  # file over default
        (10, "5", None, 5),  # environment over file
        (10, "5", "4", 4),  # flag over everything
        (None, "5", "4", 4),
    ],
)
def test_config_precedence_is_flag_then_environment_then_file_then_default(
    tmp_path, file_rate, env_rate, flag_rate, winner
) -> None:
    extra: list[str] = []
    if file_rate is not None:
        config = tmp_path / "cron.toml"
        config.write_text(f'rate = {file_rate}\ncom-id = "F0995"\nkeep_columns = []\n')
        extra += ["--config", str(config)]
    if flag_rate is not None:
        extra += ["--rate", flag_rate]
    env = {"KOSCOM_RATE": env_rate} if env_rate else {}
    assert rate_of(dry_run(tmp_path, *extra, env=env)) == pytest.approx(winner)


def test_unknown_config_key_is_an_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "cron.toml"
    config.write_text("rate = 10\nconcurrancy = 4\n")
    path = write_csv(tmp_path / "in.csv", PEOPLE)
    result = run_cli(["run", str(path), "--config", str(config), "--dry-run"])
    assert result.exit_code == 2
    assert "unknown key 'concurrancy'" in result.stderr


def test_dry_run_sends_nothing_and_needs_no_key(sandbox, tmp_path: Path) -> None:
    assert rate_of(dry_run(tmp_path, env={"KOSCOM_API_KEY": ""})) == pytest.approx(20)
    assert sandbox.sandbox.stats.requests == 0


def test_keep_columns_carry_input_columns_into_reconciled(sandbox, tmp_path: Path) -> None:
    rows = [(ci, name, f"C{i:05d}", "x") for i, (ci, name) in enumerate(PEOPLE)]
    header = ("ci", "kor_name", "customer_no", "other")
    path = write_csv(tmp_path / "in.csv", rows, header=header)
    result = job(sandbox, path, tmp_path / "out", "--keep-columns", "customer_no")
    assert result.exit_code == 0, result.stderr
    frame = result.reconciled()
    assert list(frame.columns)[-1] == "customer_no"
    assert "other" not in frame.columns
    assert list(frame["customer_no"]) == [f"C{i:05d}" for i in range(40)]
    missing = job(sandbox, path, tmp_path / "b", "--keep-columns", "nope")
    assert missing.exit_code == 2
    assert "no column 'nope'" in missing.stderr


def test_pseudonymized_outputs_hold_no_ci_and_no_key_anywhere(sandbox, tmp_path: Path) -> None:
    key = "pseudonym-secret-8d1f-0123456789abcdef"
    rows = [list(p) for p in PEOPLE]
    rows[0][1] = ""  # one reject, whose CI must be hidden too
    path = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out"
    result = job(sandbox, path, out, "--pseudonymize", "--debug", KOSCOM_PSEUDONYM_KEY=key)
    assert result.exit_code == 0, result.stderr
    frame = result.reconciled()
    assert "ci" not in frame.columns
    assert list(frame["ci_hmac"]) == [pseudonym(key.encode(), ci) for ci, _ in PEOPLE[1:]]
    assert "ci_hmac" in result.accounts().columns
    published = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert {p.name for p in published} >= {"reconciled.parquet", "accounts.parquet", "rejects.csv"}
    everything = b"".join(p.read_bytes() for p in published)
    everything += (result.stdout + result.stderr).encode()
    for ci, _ in PEOPLE:
        assert ci.encode() not in everything
    for secret in (API_KEY, key):
        assert secret.encode() not in everything


def test_pseudonymize_without_a_key_is_exit_2(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", PEOPLE)
    result = job(sandbox, path, tmp_path / "out", "--pseudonymize", KOSCOM_PSEUDONYM_KEY="")
    assert result.exit_code == 2
    assert "KOSCOM_PSEUDONYM_KEY" in result.stderr


def test_the_production_host_is_named_before_anything_is_sent(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "--base-url", "https://apigw.koscom.co.kr/v1/common/member")
    assert "using the PRODUCTION API at apigw.koscom.co.kr" in result.stderr


def test_xlsx_inputs_are_read_from_the_named_sheet(sandbox, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["unrelated"])
    sheet = book.create_sheet("고객")
    sheet.append(["ci", "kor_name", "customer_no"])
    for i, (ci, name) in enumerate(PEOPLE):
        sheet.append([ci, name, 1000 + i])
    path = tmp_path / "export.xlsx"
    book.save(path)
    result = job(
        sandbox, path, tmp_path / "out", "--sheet", "고객", "--keep-columns", "customer_no"
    )
    assert result.exit_code == 0, result.stderr
    frame = result.reconciled()
    assert list(frame["ci"]) == [ci for ci, _ in PEOPLE]
    assert frame["customer_no"].iloc[0] == "1000"
    wrong = job(sandbox, path, tmp_path / "b")  # the first sheet has no ci column
    assert wrong.exit_code == 2


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "KOSCOM_API_KEY": API_KEY}


def test_off_a_terminal_progress_is_json_lines_without_control_characters(
    sandbox, tmp_path: Path
) -> None:
    sandbox.sandbox.configure(latency=0.02)
    path = write_csv(tmp_path / "in.csv", customers(120))
    args = [*base_args(sandbox, path, tmp_path / "out"), "--rate", "100"]
    args.remove("--log-format")
    args.remove("json")  # JSON is the default off a terminal
    done = subprocess.run(
        [sys.executable, "-m", "jobs", *args, "--progress-interval", "1"],
        env=subprocess_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr
    assert "\r" not in done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    progress = [line for line in lines if line["event"] == "progress"]
    assert progress
    assert {"done", "total", "per_s", "eta_s", "requests", "retries", "run_id"} <= set(progress[0])
    assert len({line["run_id"] for line in lines}) == 1
    for key in ("customers", "linked", "http_429", "requests_per_s", "duration_s"):
        assert re.search(rf"^\s+{key}\s", done.stdout, re.MULTILINE), key  # the closing table


def test_on_a_terminal_a_live_bar_is_drawn(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(60))
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs", *base_args(sandbox, path, tmp_path / "out")],
        env=subprocess_env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    screen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    assert proc.wait(60) == 0
    os.close(primary)
    text = screen.decode(errors="replace")
    assert "60/60" in text
    assert "cust/s" in text
    assert "\r" in text  # redrawn in place


def test_summary_table_lists_errors_by_reason(sandbox, tmp_path: Path) -> None:
    sandbox.sandbox.configure(faults=(Fault("unknown_result", 1.0, api="register/search"),))
    path = write_csv(tmp_path / "in.csv", PEOPLE[:5])
    result = job(sandbox, path, tmp_path / "out", "--max-error-rate", "1")
    assert "error: 5 x register/search: answered an unknown result" in result.stdout
    reasons = pd.Series(result.summary()["errors_by_reason"])
    assert reasons.sum() == 5
