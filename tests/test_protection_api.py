"""A hostile API against regulated data: the second review's attacks, replayed as it ran them.

The sandbox plays the attacker (jobs/sandbox/hostile.py); tests/leaks.py searches what a
run left behind for pieces of CIs and of the key, in every form the review searched.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from jobs.sandbox.config import SandboxConfig
from jobs.sandbox.server import Fault
from jobs.sandbox.truth import truth
from tests.conftest import API_KEY, CliResult, customers, job, run_cli, write_csv
from tests.leaks import pieces_found, texts_under
from tests.test_dataset import (
    PG_PASSWORD,
    dataset_run,
    own_database,
    postgres,  # noqa: F401  (the fixture: a throwaway cluster)
)

# Every 4 characters of these keys, as written, escaped or with marks as spaces, hold a
# mark that base64 and hex never do: the seals and HMACs a run writes are random base64
# and hex, where a key of letters and digits alone shows a piece by chance (1 run in ~300).
KEY = "V$q#7!L@m^3&T*z(9)H;k:2,W<d>5?R$b#8!N@c^4&G*f(6)"
PUNCTUATED = "K$x#9!Q@m^2&Z*r(7)p;W:4,v<T>8?n"  # the review's key: its pieces outlived punctuation


def hostile(sandbox, *faults: Fault, key: str = PUNCTUATED) -> dict[str, str]:
    """The sandbox under `key`, with `faults`; the environment a run needs to use that key."""
    sandbox.sandbox.reset(SandboxConfig(api_key=key, faults=faults))
    return {"KOSCOM_API_KEY": key, "KOSCOM_PSEUDONYM_KEY": KEY}


def on(kind: str, cis: list[str], api: str = "*") -> Fault:
    return Fault(kind, 1.0, api=api, cis=frozenset(cis))


def leaks(result: CliResult, folders: list[Path], people: list[tuple[str, str]]) -> list[str]:
    texts = [(str(path), text) for folder in folders for path, text in texts_under(folder)]
    texts += [("stdout", result.stdout), ("stderr", result.stderr)]
    return pieces_found(texts, [ci for ci, _ in people], [PUNCTUATED, KEY])


def test_server_text_quoting_pieces_of_the_ci_and_key_reaches_no_output(
    sandbox, tmp_path: Path
) -> None:
    """Findings 1 and 2: pieces in error text, a CI in `code`, a punctuated key."""
    people = customers(20)
    members = [ci for ci, _ in people[2:] if truth(ci).membership == "member"]
    both, consent = [ci for ci, _ in people[:2]], members[:2]
    env = hostile(sandbox, on("echo_pieces", both), on("echo_pieces", consent, "consent/search"))
    out = tmp_path / "out"
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, out, "--pseudonymize", "--max-error-rate", "1", **env)
    assert result.exit_code == 0, result.stderr
    errors = result.reconciled().query("status == 'error'")["error"].tolist()
    assert len(errors) == 4
    assert all("platform error of unknown shape (bad request" in e for e in errors), errors
    assert run_cli(["report", str(out)]).exit_code == 0
    assert (out / "report.html").exists()
    assert (out / ".progress.sqlite").exists()  # kept, sealed, for a rerun of its 4 errors
    assert leaks(result, [out], people) == []


def test_account_fields_are_checked_against_the_page_or_cleaned(sandbox, tmp_path: Path) -> None:
    """Finding 3: vtAccNo and comId of the page's shape, aliases without pieces."""
    people = [(ci, name) for ci, name in customers(40) if truth(ci).membership == "member"][:12]
    echoing, invalid = [ci for ci, _ in people[:3]], [ci for ci, _ in people[3:5]]
    env = hostile(sandbox, on("echo_fields", echoing), on("bad_account", invalid))
    out = tmp_path / "out"
    result = job(
        sandbox, write_csv(tmp_path / "in.csv", people), out, "--pseudonymize",
        "--max-error-rate", "1", **env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    frame = result.reconciled()
    errors = frame.query("status == 'error'")["error"].tolist()
    assert errors == ["consent/search: answered a vtAccNo that is not 18 digits"] * 2
    assert (frame["linked_accounts"] == 3).sum() >= 3  # the echoing answers are kept, cleaned
    accounts = result.accounts()
    assert accounts["vt_acc_no"].str.fullmatch(r"[0-9]{18}").all()
    assert leaks(result, [out], people) == []


def test_an_answer_listing_more_accounts_than_a_person_holds_is_refused(
    sandbox, tmp_path: Path
) -> None:
    """Finding 7: 48,000 accounts per answer; memory stays bounded whatever answers hold."""
    people = customers(10)
    env = hostile(sandbox, on("many_accounts", [ci for ci, _ in people[:3]]))
    out = tmp_path / "out"
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, out, "--max-error-rate", "1", **env)
    assert result.exit_code == 0, result.stderr
    errors = result.reconciled().query("status == 'error'")["error"].tolist()
    assert len(errors) == 3
    assert all("48000 accounts, more than any person holds" in e for e in errors)
    assert len(result.accounts()) < 100


def test_an_endless_stream_of_100_continue_counts_against_the_answer(
    sandbox, tmp_path: Path
) -> None:
    """Finding 8: 1xx answers count against the answer's size; nothing grows or waits."""
    people = customers(10)
    env = hostile(sandbox, on("continue_flood", [people[4][0]], "consent/search"))
    sandbox.sandbox.configure(endless_headers_bytes=256 * 2**20)
    out = tmp_path / "out"
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, out, "--attempts", "1", "--max-error-rate", "1", **env)
    assert result.exit_code == 0, result.stderr
    errors = result.reconciled().query("status == 'error'")["error"].tolist()
    assert len(errors) == 1
    assert "head and 1xx answers included" in errors[0]
    # It hung up after 1.5 MiB; what the server wrote beyond is what the sockets buffer.
    assert sandbox.sandbox.stats.streamed_bytes < 64 * 2**20


@pytest.mark.parametrize(
    "kind",
    ["endless_headers", "conflicting_lengths", "huge_length", "gzip_bomb", "deflate_bomb"],
)
def test_framing_attacks_after_good_answers_trip_the_answer_breaker(
    sandbox, tmp_path: Path, kind: str
) -> None:
    """Finding 21: the API misbehaving is not an outage to wait out for --max-outage."""
    people = customers(60)
    env = hostile(sandbox, on(kind, [ci for ci, _ in people[3:]], "consent/search"))
    sandbox.sandbox.configure(endless_headers_bytes=4 * 2**20)
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, tmp_path / "out", "--concurrency", "1", "--max-outage", "60", **env)
    assert result.exit_code == 3, result.stderr
    assert "answers could not be used" in result.stderr
    assert "outage" not in result.summary().get("reason", "")


def spaced(ci: str) -> str:
    """A CI in 30-character groups, as a careless export splits a long value."""
    return " ".join(ci[i : i + 30] for i in range(0, len(ci), 30))


def test_a_ci_split_by_spaces_is_still_hidden_under_pseudonymize(sandbox, tmp_path: Path) -> None:
    """Finding 14: in a rejected row's other column, and in a kept column."""
    people = customers(6)
    rows = [[ci, name, "plain"] for ci, name in people]
    rows.append(["not-a-ci", "홍길동", spaced(people[0][0])])  # a reject: its values are kept
    path = write_csv(tmp_path / "in.csv", rows, header=("ci", "kor_name", "memo"))
    out = tmp_path / "out"
    env = {"KOSCOM_PSEUDONYM_KEY": KEY}
    result = job(sandbox, path, out, "--pseudonymize", "--keep-progress", **env)
    assert result.exit_code == 0, result.stderr
    assert len(result.rejects()) == 1
    assert (out / ".progress.sqlite").exists()  # kept: it must not hold the pieces either
    assert leaks(result, [out], people) == []
    kept = [[ci, name, spaced(ci)] for ci, name in people]
    path = write_csv(tmp_path / "kept.csv", kept, header=("ci", "kor_name", "memo"))
    refused = job(
        sandbox, path, tmp_path / "kept", "--pseudonymize", "--keep-columns", "memo", **env
    )
    assert refused.exit_code == 2
    assert "CI-shaped values" in refused.stderr


def test_a_header_named_by_a_ci_shows_nowhere_under_pseudonymize(sandbox, tmp_path: Path) -> None:
    """Finding 20: rejects.csv's header, summary.json, .finished.json, the store, exit line."""
    people = customers(6)
    named = customers(1, salt="header")[0][0]
    rows = [[ci, name, "x"] for ci, name in people] + [["not-a-ci", "홍길동", "y"]]
    path = write_csv(tmp_path / "in.csv", rows, header=("ci", "kor_name", named))
    out = tmp_path / "out"
    env = {"KOSCOM_PSEUDONYM_KEY": KEY}
    result = job(sandbox, path, out, "--pseudonymize", "--keep-progress", **env)
    assert result.exit_code == 0, result.stderr
    assert len(result.rejects().columns) == 5  # row, reason, ci_hmac, kor_name, the hidden one
    assert leaks(result, [out], [(named, "")]) == []
    path = write_csv(tmp_path / "bad.csv", rows, header=(named, "kor_name", "memo"))
    refused = job(sandbox, path, tmp_path / "bad", "--pseudonymize", **env)
    assert refused.exit_code == 2
    assert "has no column 'ci'" in refused.stderr
    assert leaks(refused, [], [(named, "")]) == []


def test_debug_output_of_a_failing_postgresql_sink_holds_no_ci_or_name(
    sandbox,
    postgres: str,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    """Finding 13: the database's "Failing row contains (…)" quoted a row under --debug."""
    url = own_database(postgres, "failing_sink")
    with psycopg.connect(url, password=PG_PASSWORD, autocommit=True) as pg:  # no row fits
        pg.execute(
            "CREATE TABLE reconciled (ci text, kor_name text CHECK (kor_name = ''), run_date date)"
        )
    people = customers(5)
    path = write_csv(tmp_path / "in.csv", people)
    result = dataset_run(
        sandbox, path, tmp_path / "ds", "2026-11-01", "--sink", url, "--debug",
        PGPASSWORD=PG_PASSWORD,
    )  # fmt: skip
    assert result.exit_code == 5, result.stderr
    assert "check constraint" in result.stderr  # the database's reason is kept
    assert pieces_found([("stderr", result.stderr)], [ci for ci, _ in people], []) == []
    assert not [name for _, name in people if name in result.stderr]


def misplaced(result: CliResult) -> list[str]:
    """Customers whose published answer is not theirs (the sandbox's truth says what is)."""
    accounts = result.accounts().groupby("ci")
    held = {ci: set(zip(g.com_id, g.vt_acc_no, strict=True)) for ci, g in accounts}
    wrong = []
    for row in result.reconciled().query("status != 'error'").itertuples():
        told = truth(row.ci)
        member = "member" if told.membership == "member" else "nonMember"
        none = told.membership == "not_found" or told.consent_not_found
        owned = set() if none else {(c.strip(), n) for c, n, _ in told.accounts}
        if row.membership != member or held.get(row.ci, set()) != owned:
            wrong.append(row.ci[:8])
    return wrong


def test_answers_a_gateway_sends_twice_are_never_published_under_another_customer(
    sandbox, tmp_path: Path
) -> None:
    """Finding 4: late duplicates on reused connections; the resume exits 0 with true data."""
    people = customers(500)
    env = hostile(sandbox, Fault("late_duplicate", 0.2), key=API_KEY)
    path = write_csv(tmp_path / "in.csv", people)
    out = tmp_path / "out"
    first = job(sandbox, path, out, "--max-error-rate", "1", **env)
    assert first.exit_code in (0, 3), first.stderr
    final = first if first.exit_code == 0 else job(sandbox, path, out, "--max-error-rate", "1")
    assert final.exit_code == 0, final.stderr
    assert misplaced(final) == []
    assert first.summary()["asked_again"] > 0  # the attack happened, and was found
    assert "were asked again" in first.stderr  # and the user is told


def test_the_review_scan_finds_no_piece_of_a_ci_or_key_in_anything_a_night_leaves(
    sandbox, tmp_path: Path
) -> None:
    """The review's scan: dataset, DuckDB sink, report, store, --debug logs; nothing found."""
    people = customers(60)
    named = customers(1, salt="header")[0][0]
    everyone = [ci for ci, _ in people]
    env = hostile(
        sandbox,
        on("echo_pieces", everyone[:2]),
        on("bad_account", everyone[2:3], "consent/search"),
        on("echo", everyone[3:4], "consent/search"),
        on("echo_fields", everyone),  # every other answer quotes the CI and key in every field
    )
    rows = [[ci, name, "memo"] for ci, name in people]
    rows.append(["not-a-ci", "홍길동", spaced(people[5][0])])
    path = write_csv(tmp_path / "in.csv", rows, header=("ci", "kor_name", named))
    root, sink = tmp_path / "ds", tmp_path / "bi.duckdb"
    night = dataset_run(
        sandbox, path, root, "2026-11-01", "--pseudonymize", "--debug", "--keep-progress",
        "--sink", f"duckdb:///{sink}", **env,
    )  # fmt: skip
    assert night.exit_code == 0, night.stderr
    page = run_cli(["report", str(root)])
    assert page.exit_code == 0, page.stderr
    assert list(root.rglob(".progress.sqlite"))  # the store is kept, and searched too
    left = [*texts_under(root), *((p, t) for p, t in texts_under(tmp_path) if p == sink)]
    assert any(path == sink and "reconciled" in text for path, text in left)  # read inside
    texts = [(str(path), text) for path, text in left]
    texts += [("stdout", night.stdout + page.stdout), ("stderr", night.stderr + page.stderr)]
    assert pieces_found(texts, [*everyone, named], [PUNCTUATED, KEY]) == []
