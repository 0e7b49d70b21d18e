"""Input rules of the contract: trimmed values, an 88-character CI, a 1–10 character name."""

from __future__ import annotations

import base64
import binascii

from jobs.models import Customer

CI_LENGTH = 88
CI_BYTES = 64
NAME_MAX = 10


def ci_problem(value: str | None) -> str | None:
    """Why `value` (trimmed) is not a valid CI, or None if it is."""
    if not value:
        return "ci is empty"
    if len(value) != CI_LENGTH:
        return f"ci has {len(value)} characters, not {CI_LENGTH}"
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "ci is not standard base64"
    if len(decoded) != CI_BYTES:
        return f"ci decodes to {len(decoded)} bytes, not {CI_BYTES}"
    return None


def name_problem(value: str | None) -> str | None:
    """Why `value` (trimmed) is not a valid Korean name, or None if it is."""
    if not value:
        return "kor_name is empty"
    if len(value) > NAME_MAX:
        return f"kor_name has {len(value)} characters, more than {NAME_MAX}"
    return None


def customer_or_problem(ci: str | None, kor_name: str | None) -> Customer | str:
    """A valid customer from raw values, or the first reason it is not one."""
    ci = (ci or "").strip()
    kor_name = (kor_name or "").strip()
    problem = ci_problem(ci) or name_problem(kor_name)
    return problem or Customer(ci, kor_name)


def mask_ci(ci: str) -> str:
    """A CI as it may appear in logs: never more than its first 4 characters."""
    return f"{ci[:4]}…({len(ci)})"


def mask_name(name: str) -> str:
    return f"{name[:1]}{'*' * max(0, len(name) - 1)}"
