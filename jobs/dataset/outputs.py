"""The contract's output files: typed Arrow schemas and the rows that fill them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batch import REJECTS_VIEW, SUMMARY_VIEW, View
from jobs.api.models import Customer
from jobs.reconcile import Status
from jobs.record import CustomerRecord

Row = dict[str, Any]

RECONCILED_COLUMNS = (
    "ci",
    "kor_name",
    "membership",
    "linked_accounts",
    "is_non_member",
    "no_linked_account",
    "status",
    "next_action",
    "error",
    "terms_expire_date",
    "checked_at",
    "asked_on",
)
ACCOUNT_COLUMNS = ("ci", "com_id", "vt_acc_no", "vt_acc_alias")
# 2: reconciled gained `asked_on` before the kept columns. 3: timeline has fixed columns
# (every status's count, null until it occurs) and the run log says which run is `current`.
SCHEMA_VERSION = "3"
# Few distinct values each: stored dictionary-encoded in Parquet (docs/schema.md).
DICTIONARY_COLUMNS = ("membership", "status", "next_action", "error", "com_id", "event")
SCHEMA_METADATA = {"member_recon.schema_version": SCHEMA_VERSION}


# The workbook's sheets (--format xlsx): a list per next action that asks something of the
# service, then every customer, the accounts and the rejects. Names fit Excel's 31 characters.
ACTION_SHEETS = {
    "portal_signup": "포탈 가입 안내 (portal_signup)",
    "link_account": "계좌 연결 안내 (link_account)",
}
SUMMARY_LABELS = (
    ("rows", "rows read · 읽은 행"),
    ("rejected", "rejected rows · 제외 행"),
    ("items", "customers · 고객"),
    ("linked", "linked · 계좌 연결됨"),
    ("non_member", "non_member · 포탈 비회원 → portal_signup"),
    ("no_linked_account", "no_linked_account · 연결 계좌 없음 → link_account"),
    ("error", "error · 오류 → retry"),
)
# An action list leaves out what its action already says (is_non_member, error, ...).
ACTION_COLUMNS = (
    "status",
    "next_action",
    "membership",
    "linked_accounts",
    "terms_expire_date",
    "checked_at",
    "asked_on",
)


def workbook_views(ci_field: str, keep_columns: Sequence[str]) -> list[View]:
    """The sheets of reconciled.xlsx, each with the kept columns beside the customer."""
    person = (ci_field, "kor_name", *keep_columns)
    rest = tuple(c for c in RECONCILED_COLUMNS if c not in ("ci", "kor_name"))
    return [
        View("요약 (summary)", SUMMARY_VIEW, labels=SUMMARY_LABELS),
        *(
            View(title, "reconciled", (*person, *ACTION_COLUMNS), ("next_action", (action,)))
            for action, title in ACTION_SHEETS.items()
        ),
        View("전체 고객 (reconciled)", "reconciled", (*person, *rest)),
        View("계좌 (accounts)", "accounts", (*person, *ACCOUNT_COLUMNS[1:])),
        View("제외 행 (rejects)", REJECTS_VIEW),
    ]


def table_schema(fields: list[Any]) -> Any:
    """A dataset table's Arrow schema: these fields, stamped with the schema's version."""
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema(fields, metadata=SCHEMA_METADATA)


def reconciled_schema(ci_field: str = "ci", keep_columns: Sequence[str] = ()) -> Any:
    import pyarrow as pa  # noqa: PLC0415  (lazy: keeps --help fast)

    return table_schema(
        [
            pa.field(ci_field, pa.string(), nullable=False),
            pa.field("kor_name", pa.string(), nullable=False),
            pa.field("membership", pa.string()),
            pa.field("linked_accounts", pa.int64()),
            pa.field("is_non_member", pa.bool_()),
            pa.field("no_linked_account", pa.bool_()),
            pa.field("status", pa.string(), nullable=False),
            pa.field("next_action", pa.string(), nullable=False),
            pa.field("error", pa.string()),
            pa.field("terms_expire_date", pa.date32()),
            pa.field("checked_at", pa.timestamp("us", tz="UTC")),
            pa.field("asked_on", pa.date32()),
            *(pa.field(name, pa.string()) for name in keep_columns),
        ]
    )


def accounts_schema(ci_field: str = "ci") -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return table_schema(
        [
            pa.field(ci_field, pa.string(), nullable=False),
            pa.field("com_id", pa.string(), nullable=False),
            pa.field("vt_acc_no", pa.string(), nullable=False),
            pa.field("vt_acc_alias", pa.string()),
        ]
    )


def runs_schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    counts = ("rows", "rejected", "customers", "linked", "non_member", "no_linked_account", "error")
    return table_schema(
        [
            pa.field("run_id", pa.string()),
            pa.field("run_date", pa.date32()),
            pa.field("input", pa.string()),
            pa.field("input_sha256", pa.string()),
            pa.field("state", pa.string()),
            pa.field("exit_code", pa.int64()),
            *(pa.field(name, pa.int64()) for name in counts),
            pa.field("requests", pa.int64()),
            pa.field("retries", pa.int64()),
            pa.field("started_at", pa.timestamp("us", tz="UTC")),
            pa.field("finished_at", pa.timestamp("us", tz="UTC")),
            pa.field("asked", pa.int64()),  # answers asked tonight
            pa.field("carried", pa.int64()),  # answers carried from an earlier night (--max-age)
            pa.field("current", pa.bool_()),  # the run whose files the night's partitions hold
            pa.field("sinks", pa.string()),  # loading, loaded, failed: …, interrupted by …
        ]
    )


TIMELINE_COUNTS = ("items_done", *(f"items_{s.value}" for s in Status))


def timeline_schema() -> Any:
    """The timeline's columns, the same every night: a status's count is null until it occurs."""
    import pyarrow as pa  # noqa: PLC0415

    stamp = pa.timestamp("us", tz="UTC")
    return table_schema(
        [
            pa.field("at", stamp),
            pa.field("session_started", stamp),
            pa.field("elapsed_s", pa.float64()),
            *(pa.field(name, pa.int64()) for name in TIMELINE_COUNTS),
            *(pa.field(name, pa.int64()) for name in ("requests", "retries", "http_429")),
            pa.field("req_per_s", pa.float64()),
            pa.field("quota", pa.float64()),
            pa.field("outage_seconds", pa.float64()),  # the API down so far, this session
        ]
    )


def reconciled_row(customer: Customer, record: CustomerRecord, ci: str, ci_field: str) -> Row:
    """One reconciled row; `ci` is the CI as outputs show it (as given, or its HMAC)."""
    outcome = record.outcome
    return {
        ci_field: ci,
        "kor_name": customer.kor_name,
        "membership": outcome.membership,
        "linked_accounts": outcome.linked_accounts,
        "is_non_member": outcome.is_non_member,
        "no_linked_account": outcome.no_linked_account,
        "status": outcome.status.value,
        "next_action": outcome.next_action.value,
        "error": outcome.error,
        "terms_expire_date": outcome.terms_expire_date,
        "checked_at": record.checked_at,
        "asked_on": record.asked_on,
        **dict(customer.kept),
    }


def account_rows(record: CustomerRecord, ci: str, ci_field: str) -> list[Row]:
    return [
        {ci_field: ci, "com_id": a.com_id, "vt_acc_no": a.vt_acc_no, "vt_acc_alias": a.vt_acc_alias}
        for a in record.outcome.accounts
    ]
