"""Pure rules, no server: input validation, answer parsing, reconciliation."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from batch.errors import (
    CredentialsRejected,
    ForeignAnswer,
    ItemRejected,
    RateLimited,
    ServerFailure,
    UnexpectedAnswer,
    UsageError,
)
from batch.http.classify import read_answer
from batch.http.limits import retry_after, stated_limits
from batch.http.transport import HttpAnswer
from jobs.api import answers
from jobs.api.answers import parse_date
from jobs.api.client import new_request_ids
from jobs.api.models import Api, ConsentAnswer, MembershipAnswer, VirtualAccount
from jobs.privacy import mask_ci
from jobs.reconcile import NextAction, Status, reconcile
from jobs.sandbox.server import synthetic_ci
from jobs.validation import customer_or_problem

CI = synthetic_ci(1)
SEED_SAMPLE_CI = (
    "Q9z5ccmjYNrhPVXrdfgfgfFdfgFGHdfg3fGFGgghDFFGghghgSSSfgfgcvbdfgert45rgfgdfgfhpf5vmzjaA=="
)


@pytest.mark.parametrize(
    ("ci", "name", "reason"),
    [
        ("", "홍길동", "ci is empty"),
        ("   ", "홍길동", "ci is empty"),
        (SEED_SAMPLE_CI, "홍길동", "ci has 87 characters, not 88"),
        ("!" + CI[1:], "홍길동", "ci is not standard base64"),
        (
            CI[:-2] + "-_",
            "홍길동",
            "ci is not standard base64",
        ),  # URL-safe alphabet is not standard
        ("A" * 88, "홍길동", "ci decodes to 66 bytes, not 64"),  # 88 chars, no padding
        (CI, "", "kor_name is empty"),
        (CI, "가나다라마바사아자차카", "kor_name has 11 characters, more than 10"),
    ],
)
def test_invalid_rows_get_a_reason_a_person_understands(ci: str, name: str, reason: str) -> None:
    assert customer_or_problem(ci, name) == reason


def test_values_are_trimmed_before_validation() -> None:
    customer = customer_or_problem(f"  {CI}\t", " 홍길동 ")
    assert not isinstance(customer, str)
    assert (customer.ci, customer.kor_name) == (CI, "홍길동")


def test_request_ids_are_20_characters_with_one_prefix_per_run() -> None:
    ids = [next(new_request_ids()) for _ in range(2)]
    one_run = new_request_ids()
    first, second = next(one_run), next(one_run)
    assert len(first) == len(second) == 20
    assert first[:8] == second[:8]
    assert first != second
    assert ids[0][:8] != ids[1][:8]  # two runs: two prefixes


def test_mask_shows_four_characters_and_the_length() -> None:
    assert mask_ci(CI) == f"{CI[:4]}…(88)"


def interpret(api: Api, http: HttpAnswer) -> MembershipAnswer | ConsentAnswer:
    """What the gate makes of an answer: the engine's default reading, then the job's."""
    return read_answer(http, lambda json: answers.interpret(api, json))


def answer(status: int, body: object, **headers: str) -> HttpAnswer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpAnswer(status, headers, raw)


def test_member_answer_with_extra_fields_is_parsed() -> None:
    got = interpret(
        Api.REGISTER,
        answer(200, {"result": "member", "commonTermsExpireDate": "20271231", "new": 1}),
    )
    assert got == MembershipAnswer("member", dt.date(2027, 12, 31))


@pytest.mark.parametrize("missing", [None, "null", "", "2027-13-01", 20271231.5])
def test_missing_or_odd_terms_date_is_none(missing: object) -> None:
    body = {"result": "nonMember", "commonTermsExpireDate": missing}
    assert interpret(Api.REGISTER, answer(200, body)) == MembershipAnswer("nonMember", None)


def test_consent_answer_trims_com_id_and_keeps_alias_absent_as_none() -> None:
    body = {
        "vtAccList": [
            {"comId": " 00002", "vtAccNo": "160657695589800099", "vtAccAlias": "주식투자용"},
            {"comId": "00003 ", "vtAccNo": "160657695589800100", "endpoint": "x"},
            {"comId": "00004", "vtAccNo": "160657695589800101", "vtAccAlias": "null"},
        ],
        "serviceTermsExpireDate": "",
    }
    got = interpret(Api.CONSENT, answer(200, body))
    assert isinstance(got, ConsentAnswer)
    assert got.accounts == (
        VirtualAccount("00002", "160657695589800099", "주식투자용"),
        VirtualAccount("00003", "160657695589800100", None),
        VirtualAccount("00004", "160657695589800101", None),
    )


@pytest.mark.parametrize(
    "empty", [{"vtAccList": []}, {"vtAccList": None}, {"vtAccList": "null"}, {"vtAccList": ""}]
)
def test_an_empty_account_list_means_no_accounts(empty: object) -> None:
    assert interpret(Api.CONSENT, answer(200, empty)) == ConsentAnswer(())


@pytest.mark.parametrize(
    ("api", "status", "body", "headers", "failure", "reason"),
    [
        (Api.REGISTER, 200, {"result": "maybe"}, {}, UnexpectedAnswer, "unknown result 'maybe'"),
        # Not of the asked API's shape: on a reused connection, perhaps another's answer.
        (Api.REGISTER, 200, {}, {}, ForeignAnswer, "unknown result 'nothing'"),
        (Api.REGISTER, 200, [1], {}, ForeignAnswer, "no JSON object"),
        (Api.CONSENT, 200, {"vtAccList": "x"}, {}, UnexpectedAnswer, "not a list"),
        (Api.CONSENT, 200, {}, {}, ForeignAnswer, "without vtAccList"),
        (Api.CONSENT, 200, {"result": "member"}, {}, ForeignAnswer, "without vtAccList"),
        (Api.CONSENT, 302, b"", {"location": "/x"}, UnexpectedAnswer, "HTTP 302 redirect"),
        (Api.REGISTER, 204, b"", {}, UnexpectedAnswer, "HTTP 204"),
        (
            Api.CONSENT,
            200,
            {"vtAccList": [{"comId": "1"}]},
            {},
            UnexpectedAnswer,
            "without vtAccNo",
        ),
        # A broken 200 is transient (retried), not a sign that the API changed.
        (Api.REGISTER, 200, b'{"result": "mem', {}, ServerFailure, "truncated or invalid JSON"),
        (Api.REGISTER, 200, b"OK", {}, ServerFailure, "not JSON"),
        (Api.CONSENT, 200, b"", {}, ServerFailure, "HTTP 200 with an empty body"),
        (Api.CONSENT, 503, {"message": "no peer"}, {}, ServerFailure, "HTTP 503"),
        (Api.REGISTER, 502, b"<html><body>Bad Gateway</body></html>", {}, ServerFailure, "HTML"),
        (Api.REGISTER, 500, b"Internal Server Error", {}, ServerFailure, "HTTP 500"),
        (Api.REGISTER, 503, b"", {}, ServerFailure, "an empty body"),
        (
            Api.REGISTER,
            429,
            {"message": "API rate limit exceeded"},
            {"retry-after": "2"},
            RateLimited,
            "HTTP 429",
        ),
        (Api.REGISTER, 503, b"busy", {"retry-after": "1"}, ServerFailure, "HTTP 503"),
        (
            Api.REGISTER,
            500,
            {"category": "c", "code": 1234, "message": "boom"},
            {},
            ItemRejected,
            "platform error 1234 (boom)",
        ),
        (Api.REGISTER, 400, {"message": "bad"}, {}, ItemRejected, "HTTP 400"),
    ],
)
def test_failures_are_classified(api, status, body, headers, failure, reason) -> None:
    with pytest.raises(failure) as caught:
        interpret(api, answer(status, body, **headers))
    assert reason in caught.value.reason
    assert type(caught.value) is failure


@pytest.mark.parametrize(
    "message", ["No API key found in request", "Invalid authentication credentials"]
)
def test_rejected_key_aborts_and_says_so(message: str) -> None:
    with pytest.raises(CredentialsRejected, match="API key was rejected"):
        interpret(Api.REGISTER, answer(401, {"message": message}))


def test_unknown_route_is_a_configuration_error() -> None:
    with pytest.raises(UsageError, match="no route"):
        interpret(Api.CONSENT, answer(404, {"message": "no Route matched with those values"}))


@pytest.mark.parametrize("code", ["3007", 3007, "4004"])
def test_no_user_is_an_answer_not_an_outage(code: object) -> None:
    body = {"category": "x", "code": code, "message": "not found user"}
    assert interpret(Api.CONSENT, answer(500, body)) == ConsentAnswer((), platform_code=str(code))
    assert interpret(Api.REGISTER, answer(500, body)) == MembershipAnswer("nonMember")


def test_retry_after_is_kept_for_429_and_503() -> None:
    for status in (429, 503):
        with pytest.raises((RateLimited, ServerFailure)) as caught:
            interpret(Api.REGISTER, answer(status, b"", **{"retry-after": "4"}))
        assert caught.value.retry_after == 4.0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({}) is None
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None


def test_stated_limits_read_kong_headers() -> None:
    kong = {
        "x-ratelimit-limit-second": "10",
        "x-ratelimit-remaining-second": "3",
        "x-ratelimit-limit-minute": "300",
        "x-ratelimit-limit-day": "100000",
        "x-ratelimit-remaining-day": "99000",
    }
    limits = stated_limits(kong)
    assert limits.per_second == 5.0  # 300 a minute is tighter than 10 a second
    assert (limits.day_limit, limits.day_remaining, limits.hold_for) == (100000, 99000, None)
    spent = {"ratelimit-limit": "600", "ratelimit-remaining": "0", "ratelimit-reset": "30"}
    assert stated_limits(spent).hold_for == 30.0  # a spent minute: everyone waits it out
    second = {"ratelimit-limit": "10", "ratelimit-remaining": "0", "ratelimit-reset": "1"}
    assert stated_limits(second).hold_for is None  # a spent second: pacing spreads the next
    assert stated_limits({"x-ratelimit-limit-second": "ten"}).per_second is None


def test_parse_date() -> None:
    assert parse_date("20260101") == dt.date(2026, 1, 1)
    assert parse_date(" 20260101 ") == dt.date(2026, 1, 1)


ACC = VirtualAccount("00002", "1", None)
MEMBER = MembershipAnswer("member")
NON_MEMBER = MembershipAnswer("nonMember")
DOWN = ServerFailure("HTTP 503 after 5 attempts")


@pytest.mark.parametrize(
    ("membership", "consent", "status", "action", "linked", "error"),
    [
        (MEMBER, ConsentAnswer((ACC,)), Status.LINKED, NextAction.NONE, 1, None),
        (MEMBER, ConsentAnswer(()), Status.NO_LINKED_ACCOUNT, NextAction.LINK_ACCOUNT, 0, None),
        (
            MEMBER,
            ConsentAnswer((), platform_code="3007"),
            Status.NO_LINKED_ACCOUNT,
            NextAction.LINK_ACCOUNT,
            0,
            None,
        ),
        (NON_MEMBER, ConsentAnswer(()), Status.NON_MEMBER, NextAction.PORTAL_SIGNUP, 0, None),
        (NON_MEMBER, ConsentAnswer((ACC,)), Status.NON_MEMBER, NextAction.PORTAL_SIGNUP, 1, None),
        (NON_MEMBER, DOWN, Status.NON_MEMBER, NextAction.PORTAL_SIGNUP, None, None),
        (
            MEMBER,
            DOWN,
            Status.ERROR,
            NextAction.RETRY,
            None,
            "consent/search: HTTP 503 after 5 attempts",
        ),
        (
            DOWN,
            ConsentAnswer(()),
            Status.ERROR,
            NextAction.RETRY,
            0,
            "register/search: HTTP 503 after 5 attempts",
        ),
        (
            DOWN,
            DOWN,
            Status.ERROR,
            NextAction.RETRY,
            None,
            "register/search: HTTP 503 after 5 attempts; consent/search: HTTP 503 after 5 attempts",
        ),
    ],
)
def test_reconciliation_rules(membership, consent, status, action, linked, error) -> None:
    got = reconcile(membership, consent)
    assert (got.status, got.next_action, got.linked_accounts, got.error) == (
        status,
        action,
        linked,
        error,
    )
    assert got.is_non_member == (
        None if isinstance(membership, ServerFailure) else membership.result == "nonMember"
    )
    assert got.no_linked_account == (None if linked is None else linked == 0)


def test_non_member_with_accounts_is_kept_and_flagged() -> None:
    got = reconcile(NON_MEMBER, ConsentAnswer((ACC, ACC)))
    assert got.inconsistent
    assert got.accounts == (ACC, ACC)
    assert not reconcile(MEMBER, ConsentAnswer((ACC,))).inconsistent
