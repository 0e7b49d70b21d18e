"""The contract's output files: typed Arrow schemas and the rows that fill them."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from batch.store import StoredItem

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
)
ACCOUNT_COLUMNS = ("ci", "com_id", "vt_acc_no", "vt_acc_alias")
REJECT_COLUMNS = ("row", "reason")
SCHEMA_VERSION = "1"
# Few distinct values each: stored dictionary-encoded in Parquet (docs/schema.md).
DICTIONARY_COLUMNS = ("membership", "status", "next_action", "error", "com_id", "event")
SCHEMA_METADATA = {"member_recon.schema_version": SCHEMA_VERSION}


def pseudonym(key: bytes, ci: str) -> str:
    """HMAC-SHA256 of a CI, hex: joinable across runs with the same key, not reversible."""
    return hmac.new(key, ci.encode(), hashlib.sha256).hexdigest()


def reconciled_schema(ci_field: str = "ci", keep_columns: Sequence[str] = ()) -> Any:
    import pyarrow as pa  # noqa: PLC0415  (lazy: keeps --help fast)

    return pa.schema(
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
            *(pa.field(name, pa.string()) for name in keep_columns),
        ],
        metadata=SCHEMA_METADATA,
    )


def accounts_schema(ci_field: str = "ci") -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.schema(
        [
            pa.field(ci_field, pa.string(), nullable=False),
            pa.field("com_id", pa.string(), nullable=False),
            pa.field("vt_acc_no", pa.string(), nullable=False),
            pa.field("vt_acc_alias", pa.string()),
        ],
        metadata=SCHEMA_METADATA,
    )


def runs_schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    counts = ("rows", "rejected", "customers", "linked", "non_member", "no_linked_account", "error")
    return pa.schema(
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
        ],
        metadata=SCHEMA_METADATA,
    )


def reconciled_row(item: StoredItem, ci_field: str, ci_value: str) -> dict[str, Any]:
    """One reconciled row from a stored item and its stored result."""
    result = item.result or {}
    terms = result.get("terms_expire_date")
    checked = result.get("checked_at")
    linked = result.get("linked_accounts")
    membership = result.get("membership")
    return {
        ci_field: ci_value,
        "kor_name": item.payload["kor_name"],
        "membership": membership,
        "linked_accounts": linked,
        "is_non_member": None if membership is None else membership == "nonMember",
        "no_linked_account": None if linked is None else linked == 0,
        "status": result["status"],
        "next_action": result["next_action"],
        "error": result.get("error"),
        "terms_expire_date": dt.date.fromisoformat(terms) if terms else None,
        "checked_at": dt.datetime.fromisoformat(checked) if checked else None,
        **item.payload.get("keep", {}),
    }


def account_rows(item: StoredItem, ci_field: str, ci_value: str) -> list[dict[str, Any]]:
    accounts = (item.result or {}).get("accounts") or []
    return [
        {ci_field: ci_value, "com_id": com_id, "vt_acc_no": number, "vt_acc_alias": alias}
        for com_id, number, alias in accounts
    ]
