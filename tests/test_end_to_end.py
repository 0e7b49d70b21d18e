"""The real CLI against the real sandbox over loopback: answers, outputs, faults, limits."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.sandbox.server import Fault, synthetic_ci, truth
from tests.conftest import (
    API_KEY,
    CliResult,
    customers,
    job,
    run_cli,
    sandbox_process,
    write_csv,
)


def expected(ci: str) -> tuple[str, int, str, str]:
    """(membership, linked_accounts, status, next_action) as the sandbox's truth implies."""
    fact = truth(ci)
    membership = "member" if fact.membership == "member" else "nonMember"
    linked = len(fact.accounts)
    if membership == "nonMember":
        return membership, linked, "non_member", "portal_signup"
    if linked == 0:
        return membership, 0, "no_linked_account", "link_account"
    return membership, linked, "linked", "none"


def check_truth(result: CliResult, cis: list[str]) -> None:
    frame = result.reconciled()
    assert list(frame["ci"]) == cis  # one row per customer, in input order
    for row in frame.itertuples():
        membership, linked, status, action = expected(row.ci)
        assert (row.membership, row.linked_accounts, row.status, row.next_action) == (
            membership,
            linked,
            status,
            action,
        )
        assert row.is_non_member == (membership == "nonMember")
        assert row.no_linked_account == (linked == 0)
        assert pd.isna(row.error)


@pytest.fixture
def sample(tmp_path: Path) -> tuple[Path, list[str]]:
    people = customers(60)
    rows = [list(p) for p in people]
    rows[3][0] = f"  {rows[3][0]}  "  # padded: trimmed and kept
    rows += [
        ["", "빈값"],
        [people[0][0][:87], "홍길동"],
        [people[1][0], ""],
        [people[2][0], "가나다라마바사아자차카"],
        ["*" * 88, "홍길동"],
        [people[5][0], "다른이름"],  # repeats row 7's CI (the sixth customer's)
    ]
    return write_csv(tmp_path / "in.csv", rows), [ci for ci, _ in people]


def test_every_row_ends_in_reconciled_or_rejects_and_answers_match_the_truth(
    sandbox, sample, tmp_path: Path
) -> None:
    path, cis = sample
    result = job(sandbox, path, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    check_truth(result, cis)
    rejects = result.rejects()
    # Row numbers as a spreadsheet shows them: the header is row 1.
    assert list(rejects["row"].astype(int)) == [62, 63, 64, 65, 66, 67]
    assert list(rejects["reason"]) == [
        "ci is empty",
        "ci has 87 characters, not 88",
        "kor_name is empty",
        "kor_name has 11 characters, more than 10",
        "ci is not standard base64",
        "duplicate ci: first seen on row 7",
    ]
    assert list(rejects.columns) == ["row", "reason", "ci", "kor_name"]
    summary = result.summary()
    assert summary["rows"] == 66 == len(result.reconciled()) + len(rejects)
    assert (summary["customers"], summary["rejected"], summary["accounting_ok"]) == (60, 6, True)
    assert summary["requests"] == 120 == sandbox.sandbox.stats.requests
    by_status = result.reconciled()["status"].value_counts().to_dict()
    for status in ("linked", "non_member", "no_linked_account"):
        assert summary[status] == by_status.get(status, 0)
    assert sandbox.sandbox.stats.bad_request_ids == 0  # every reqIdConsumer unique, <= 20 chars


def test_accounts_are_one_row_per_linked_account_with_com_id_trimmed(
    sandbox, sample, tmp_path: Path
) -> None:
    path, cis = sample
    result = job(sandbox, path, tmp_path / "out")
    got = result.accounts()
    want = [
        (ci, com.strip(), number, None if alias in (None, "", "null") else alias)
        for ci in cis
        for com, number, alias in truth(ci).accounts
    ]
    assert [
        tuple(None if pd.isna(v) else v for v in r) for r in got.itertuples(index=False)
    ] == want
    assert result.summary()["non_member_with_accounts"] == sum(
        1 for ci in cis if expected(ci)[0] == "nonMember" and expected(ci)[1] > 0
    )


def test_output_schemas_are_exactly_the_contracts(sandbox, sample, tmp_path: Path) -> None:
    path, _ = sample
    result = job(sandbox, path, tmp_path / "out")
    schema = pq.read_schema(tmp_path / "out" / "reconciled.parquet")
    assert [(f.name, f.type) for f in schema] == [
        ("ci", pa.string()),
        ("kor_name", pa.string()),
        ("membership", pa.string()),
        ("linked_accounts", pa.int64()),
        ("is_non_member", pa.bool_()),
        ("no_linked_account", pa.bool_()),
        ("status", pa.string()),
        ("next_action", pa.string()),
        ("error", pa.string()),
        ("terms_expire_date", pa.date32()),
        ("checked_at", pa.timestamp("us", tz="UTC")),
        ("asked_on", pa.date32()),  # the run date that asked (an earlier one when carried)
    ]
    assert schema.metadata[b"member_recon.schema_version"] == b"3"
    accounts = pq.read_schema(tmp_path / "out" / "accounts.parquet")
    assert accounts.names == ["ci", "com_id", "vt_acc_no", "vt_acc_alias"]
    frame = result.reconciled()
    assert frame["terms_expire_date"].notna().any()  # given for some customers
    assert frame["terms_expire_date"].isna().any()  # absent, null, "null" or "" for others
    assert set(frame["asked_on"]) == {dt.date.fromisoformat(result.summary()["run_date"])}
    summary_keys = {"rows", "rejected", "customers", "linked", "non_member", "no_linked_account"}
    summary_keys |= {"error", "requests", "retries", "started_at", "finished_at"}
    assert summary_keys <= set(result.summary())


def test_csv_format_has_a_bom_and_the_same_rows(sandbox, sample, tmp_path: Path) -> None:
    path, cis = sample
    parquet = job(sandbox, path, tmp_path / "p")
    csv = job(sandbox, path, tmp_path / "c", "--format", "csv")
    assert csv.exit_code == 0, csv.stderr
    raw = (tmp_path / "c" / "reconciled.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert customers(60)[0][1] in raw.decode("utf-8")  # Korean names as UTF-8, after the BOM
    frame = csv.reconciled("csv")
    assert list(frame["ci"]) == cis
    assert list(frame["status"]) == list(parquet.reconciled()["status"])
    assert (tmp_path / "c" / "accounts.csv").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("kind", ["cp949", "utf-8-sig", "gz", "parquet"])
def test_each_input_kind_gives_the_same_dataset(sandbox, tmp_path: Path, kind: str) -> None:
    people = customers(20)
    if kind == "parquet":
        path = tmp_path / "in.parquet"
        table = pa.table({"고객CI": [c for c, _ in people], "성명": [n for _, n in people]})
        pq.write_table(table, path)
    elif kind == "gz":
        path = write_csv(tmp_path / "in.csv.gz", people, header=("고객CI", "성명"))
    else:
        path = write_csv(tmp_path / "in.csv", people, header=("고객CI", "성명"), encoding=kind)
    result = job(sandbox, path, tmp_path / "out", "--ci-column", "고객CI", "--name-column", "성명")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [c for c, _ in people])


# A broken 200 (cut short, not JSON) is transient like a 5xx; only a well-formed answer
# that is not understood says the API changed.
RECOVERABLE = ["http500", "http503", "http429", "html", "reset", "slow", "truncated", "notjson"]
UNUSABLE = ["unknown_result", "unknown_shape"]


@pytest.mark.parametrize("kind", RECOVERABLE)
def test_each_fault_is_retried_until_answered_and_no_row_is_lost(
    sandbox, tmp_path: Path, kind: str
) -> None:
    people = customers(12)
    # One customer's faults are its own: too few in a row to look like an outage.
    faulty = frozenset(ci for ci, _ in people[:1])
    sandbox.sandbox.configure(faults=(Fault(kind, first_attempts=2, cis=faulty),), slow_seconds=1.0)
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, tmp_path / "out", "--timeout", "0.3")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [c for c, _ in people])
    summary = result.summary()
    # Two failed asks per API of the faulty customer: each a retry, or a first attempt sent
    # again at once because its kept-alive connection was reset (RFC 9112 9.3.1.1).
    assert summary["retries"] + summary["resent"] == 2 * 2
    assert summary["requests"] == 2 * 12 + summary["retries"] + summary["resent"]
    assert kind == "reset" or summary["resent"] == 0
    assert summary["outages"] == 0


@pytest.mark.parametrize("kind", RECOVERABLE)
def test_a_fault_that_never_clears_ends_the_customer_in_error_with_a_reason(
    sandbox, tmp_path: Path, kind: str
) -> None:
    people = customers(10)
    faulty = frozenset(ci for ci, _ in people[:2])
    sandbox.sandbox.configure(
        faults=(Fault(kind, first_attempts=99, api="consent/search", cis=faulty),),
        slow_seconds=1.0,
    )
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, tmp_path / "out", "--timeout", "0.3", "--attempts", "3")
    frame = result.reconciled()
    assert len(frame) == 10  # no row lost
    resent = result.summary()["resent"]
    asked = sum(sandbox.sandbox.stats.asked("consent/search", ci) for ci in faulty)
    assert asked == 2 * 3 + resent
    for row in frame.itertuples():
        membership, *_ = expected(row.ci)
        if row.ci not in faulty:
            assert pd.isna(row.error)
            continue
        # 3 attempts; a first one whose kept-alive connection was reset went again at once
        assert sandbox.sandbox.stats.asked("consent/search", row.ci) in (3, 4)
        if membership == "nonMember":  # a non-member is valid whatever consent/search said
            assert row.status == "non_member"
            assert pd.isna(row.error)
            assert pd.isna(row.linked_accounts)
        else:
            assert (row.status, row.next_action) == ("error", "retry")
            assert row.error.startswith("consent/search: ")
            assert row.error.endswith("after 3 attempts")
    errors = (frame["status"] == "error").sum()
    assert result.exit_code == (1 if errors else 0)  # above the default --max-error-rate
    assert result.summary()["error"] == errors


@pytest.mark.parametrize("kind", UNUSABLE)
def test_a_few_unusable_answers_are_errors_and_are_not_retried(
    sandbox, tmp_path: Path, kind: str
) -> None:
    people = customers(30)
    odd = frozenset(ci for ci, _ in people[:3])
    sandbox.sandbox.configure(faults=(Fault(kind, 1.0, api="register/search", cis=odd),))
    result = job(sandbox, write_csv(tmp_path / "in.csv", people), tmp_path / "out")
    frame = result.reconciled().set_index("ci")
    assert result.exit_code == 1, result.stderr  # 10% in error, over the default 5%
    assert set(frame.loc[sorted(odd), "status"]) == {"error"}
    assert frame.loc[sorted(odd), "membership"].isna().all()
    assert (frame.drop(index=sorted(odd))["status"] != "error").all()
    # Not retried as a failure that heals (5 attempts). An answer not of the API's shape
    # on a reused connection may be another's: it is asked once more on a fresh
    # connection, and the others answered on that connection once again.
    assert all(1 <= sandbox.sandbox.stats.asked("register/search", ci) <= 3 for ci in odd)
    shown = "'maybe'" if kind == "unknown_result" else "'nothing'"
    # The reason names its API once.
    assert set(frame.loc[sorted(odd), "error"]) == {
        f"register/search: answered an unknown result {shown}"
    }


@pytest.mark.parametrize("kind", UNUSABLE)
def test_answers_nobody_understands_stop_the_run_before_the_quota_burns(
    sandbox, tmp_path: Path, kind: str
) -> None:
    sandbox.sandbox.configure(faults=(Fault(kind, 1.0),))
    out = tmp_path / "out"
    result = job(sandbox, write_csv(tmp_path / "in.csv", customers(2000)), out)
    assert result.exit_code == 3
    assert "answers could not be used" in result.stderr
    assert "register/search" in result.stderr or "consent/search" in result.stderr
    assert sandbox.sandbox.stats.requests <= 100
    summary = result.summary()
    assert summary["state"] == "aborted"
    assert "could not be used" in summary["reason"]
    assert summary["unanswered"] == 2000
    assert not (out / "reconciled.parquet").exists()


def test_a_rejected_key_aborts_at_once_with_exit_3(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(200))
    wrong = "wrong-key-0123456789"
    result = job(sandbox, path, tmp_path / "out", KOSCOM_API_KEY=wrong)
    assert result.exit_code == 3
    assert "API key was rejected (Invalid authentication credentials)" in result.stderr
    assert wrong not in result.stderr + result.stdout
    assert sandbox.sandbox.stats.requests <= 2 * 16  # what was in flight, no more
    assert not (tmp_path / "out" / "reconciled.parquet").exists()
    assert result.summary()["state"] == "aborted"


def test_an_outage_longer_than_max_outage_aborts_without_burning_the_quota(
    sandbox, tmp_path: Path
) -> None:
    sandbox.sandbox.configure(faults=(Fault("http500", 1.0),))
    out = tmp_path / "out"
    path = write_csv(tmp_path / "in.csv", customers(200))
    result = job(sandbox, path, out, "--max-outage", "2s")
    assert result.exit_code == 3
    assert "has been down for" in result.stderr
    assert sandbox.sandbox.stats.requests < 50  # 200 customers would take 2000 attempts
    summary = result.summary()
    assert (summary["state"], summary["outages"]) == ("aborted", 1)
    assert not (out / "reconciled.parquet").exists()


def test_no_request_goes_over_the_quota(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(60))
    with sandbox_process("--rate-limit", "40") as gateway:
        result = job(gateway, path, tmp_path / "out", "--rate", "40", "--concurrency", "32")
        assert result.exit_code == 0, result.stderr
        assert gateway.stats()["over_limit"] == 0
        assert result.summary()["http_429"] == 0
        # The control: the same sandbox does count a client that ignores the quota.
        greedy = job(gateway, path, tmp_path / "greedy", "--rate", "400", "--concurrency", "32")
        assert gateway.stats()["over_limit"] > 0
    assert greedy.exit_code == 0, greedy.stderr  # its 429s were retried: no row lost
    check_truth(greedy, [c for c, _ in customers(60)])


def test_the_daily_cap_pauses_at_the_reserve_and_a_resume_finishes(sandbox, tmp_path: Path) -> None:
    people = customers(50)
    path = write_csv(tmp_path / "in.csv", people)
    uninterrupted = job(sandbox, path, tmp_path / "ref")
    sandbox.sandbox.reset_stats()
    sandbox.sandbox.configure(daily_cap=40)
    paused = job(sandbox, path, tmp_path / "out", "--daily-reserve", "10", "--concurrency", "4")
    assert paused.exit_code == 4
    assert re.search(r"\d+ customers remain: run the same command again after", paused.stderr)
    assert max(sandbox.sandbox.stats.day_used.values()) <= 40 - 10  # the reserve was left alone
    summary = paused.summary()
    assert summary["state"] == "paused"
    assert min(summary["daily_remaining"].values()) >= 10
    assert not (tmp_path / "out" / "reconciled.parquet").exists()  # no half dataset
    sandbox.sandbox.reset_day()
    sandbox.sandbox.configure(daily_cap=1000)
    resumed = job(sandbox, path, tmp_path / "out", "--daily-reserve", "10")
    assert resumed.exit_code == 0, resumed.stderr
    for got, want in (
        (resumed.reconciled(), uninterrupted.reconciled()),
        (resumed.accounts(), uninterrupted.accounts()),
    ):
        pd.testing.assert_frame_equal(
            got.drop(columns=["checked_at"], errors="ignore"),
            want.drop(columns=["checked_at"], errors="ignore"),
        )
    assert (
        max(
            sandbox.sandbox.stats.asked(api, ci)
            for api in ("register/search", "consent/search")
            for ci, _ in people
        )
        == 1
    )  # nobody asked twice


def test_wrong_base_path_is_a_configuration_error(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = job(sandbox, path, tmp_path / "out", "--base-url", sandbox.base_url + "/v9")
    assert result.exit_code == 2
    assert "no route" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--base-url", "http://api.example.com/v1"], {}, "must use https"),
        (["--com-id", "F09"], {}, "--com-id"),
        (["--com-id", ""], {}, "--com-id (or KOSCOM_COM_ID) is required"),
        ([], {"KOSCOM_API_KEY": ""}, "no API key"),
        (["--ci-column", "주민"], {}, "input in.csv has no column '주민'"),
        (["--delimiter", ";;"], {}, "--delimiter ';;' is not one character"),
    ],
)
def test_bad_usage_is_exit_2_with_one_line(sandbox, tmp_path, args, env, message) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = job(sandbox, path, tmp_path / "out", *args, **env)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.sandbox.stats.requests == 0


def test_unreadable_input_is_exit_2_without_traceback(sandbox, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"ci,kor_name\n" + bytes(range(128, 256)) * 40 + b",x\n")
    result = job(sandbox, path, tmp_path / "out")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("member-recon:")]
    assert len(lines) == 1
    assert re.fullmatch(
        r"member-recon: input in.csv is neither UTF-8 nor CP949 \(looks like \S+\); "
        r"pass --encoding",
        lines[0],
    )
    assert "Traceback" not in result.stderr


def test_debug_adds_the_traceback_to_the_one_line(sandbox, tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    path.write_bytes(b"not parquet at all")
    plain = job(sandbox, path, tmp_path / "a")
    debug = job(sandbox, path, tmp_path / "b", "--debug")
    assert plain.exit_code == debug.exit_code == 2
    assert "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert "member-recon: input in.parquet is not a readable Parquet file" in debug.stderr


def test_neither_the_key_nor_a_ci_reaches_logs_or_messages(sandbox, tmp_path: Path) -> None:
    people = customers(30)
    sandbox.sandbox.configure(faults=(Fault("http503", 0.3), Fault("unknown_result", 0.1)))
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, tmp_path / "out", "--debug")
    text = result.stdout + result.stderr
    assert '"event": "request"' in text  # --debug logs every request...
    assert API_KEY not in text
    for ci, name in people:  # ...with every CI masked
        assert ci not in text
        assert ci[:20] not in text
        assert name not in text
    assert re.search(r'"item": "[A-Za-z0-9+/]{4}…\(88\)"', text)


def test_max_error_rate_sets_exit_1(sandbox, tmp_path: Path) -> None:
    people = customers(20)
    odd = frozenset(ci for ci, _ in people[:6])  # fewer than the unusable-answer breaker's 10
    sandbox.sandbox.configure(
        faults=(Fault("unknown_result", 1.0, api="register/search", cis=odd),)
    )
    path = write_csv(tmp_path / "in.csv", people)
    assert job(sandbox, path, tmp_path / "a", "--max-error-rate", "0.25").exit_code == 1
    assert job(sandbox, path, tmp_path / "b", "--max-error-rate", "1").exit_code == 0


def test_dry_run_validates_and_sends_nothing(sandbox, sample, tmp_path: Path) -> None:
    path, _ = sample
    result = run_cli(
        [
            "run",
            str(path),
            "--dry-run",
            "--com-id",
            "F0995",
            "--srv-id",
            "297",
            "--out",
            str(tmp_path / "out"),
            "--rate",
            "10",
        ],
        {"KOSCOM_API_KEY": ""},
    )
    assert result.exit_code == 0, result.stderr
    assert sandbox.sandbox.stats.requests == 0
    assert re.search(r"to_ask\s+60\b", result.stdout)
    assert len(pd.read_csv(tmp_path / "out" / "rejects.csv", encoding="utf-8-sig")) == 6
    assert not (tmp_path / "out" / "reconciled.parquet").exists()
    assert not (tmp_path / "out" / ".progress.sqlite").exists()  # it held every CI and name


def test_a_dry_run_on_a_paused_folder_keeps_its_progress(sandbox, sample, tmp_path: Path) -> None:
    path, _ = sample
    out = tmp_path / "out"
    sandbox.sandbox.configure(daily_cap=20)
    paused = job(sandbox, path, out, "--daily-reserve", "0", "--concurrency", "1")
    assert paused.exit_code == 4, paused.stderr
    dry = job(sandbox, path, out, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert (out / ".progress.sqlite").exists()  # the paused night's answers, for its resume
    sandbox.sandbox.configure(daily_cap=None)
    sandbox.sandbox.reset_day()
    sandbox.sandbox.reset_stats()
    resumed = job(sandbox, path, out)
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.summary()["resumed"] is True
    assert sandbox.sandbox.stats.requests < 2 * 60  # only what the paused night left


def test_outputs_are_not_world_readable(sandbox, sample, tmp_path: Path) -> None:
    path, _ = sample
    job(sandbox, path, tmp_path / "out")
    for file in (tmp_path / "out").iterdir():
        assert file.stat().st_mode & 0o077 == 0, file.name


def test_the_shipped_sample_shows_every_reject_reason(sandbox, tmp_path: Path) -> None:
    sample = Path(__file__).parents[1] / "data" / "customers_sample.csv"
    result = job(sandbox, sample, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    reasons = list(result.rejects()["reason"])
    for reason in (
        "kor_name is empty",
        "kor_name has 11 characters, more than 10",
        "ci has 87 characters, not 88",
        "ci is not standard base64",
        "ci is empty",
        "duplicate ci: first seen on row 7",
        "duplicate ci: first seen on row 8",
        "row has 4 fields where the header has 3",
    ):
        assert reason in reasons, reason
    summary = result.summary()
    assert summary["rows"] == summary["customers"] + summary["rejected"] == 303


def test_synthetic_ci_is_88_characters() -> None:
    assert len(synthetic_ci(0)) == 88
