"""Input rules of the contract: trimmed values, an 88-character CI, a 1–10 character name.

A name holding a control character (NUL, ESC, a line break) is rejected: it would break
every later load of the dataset (PostgreSQL refuses NUL in text). A kept column with NUL
is rejected for the same reason.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata

from jobs.api.models import Customer

CI_LENGTH = 88
CI_BYTES = 64
NAME_MAX = 10
_CONTROLS = frozenset({"Cc", "Zl", "Zp"})  # controls, line and paragraph separators


def ci_problem(value: str | None, column: str = "ci") -> str | None:
    """Why `value` (trimmed) is not a valid CI, or None; `column` is the input's name for it."""
    if not value:
        return f"{column} is empty"
    if len(value) != CI_LENGTH:
        return f"{column} has {len(value)} characters, not {CI_LENGTH}"
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"{column} is not standard base64"
    if len(decoded) != CI_BYTES:
        return f"{column} decodes to {len(decoded)} bytes, not {CI_BYTES}"
    return None


def name_problem(value: str | None, column: str = "kor_name") -> str | None:
    """Why `value` (trimmed) is not a valid Korean name, or None; `column` names it."""
    if not value:
        return f"{column} is empty"
    if len(value) > NAME_MAX:
        return f"{column} has {len(value)} characters, more than {NAME_MAX}"
    control = next((c for c in value if unicodedata.category(c) in _CONTROLS), None)
    if control is not None:
        return f"{column} has a control character (U+{ord(control):04X})"
    return None


def kept_problem(column: str, value: str | None) -> str | None:
    """Why a kept column's value cannot be carried into the outputs, or None."""
    if value and "\x00" in value:
        return f"{column} has a NUL character"
    return None


def customer_or_problem(
    ci: str | None, kor_name: str | None, columns: tuple[str, str] = ("ci", "kor_name")
) -> Customer | str:
    """A valid customer from raw values, or the first reason it is not one (in `columns`'
    words: the input's own names for the CI and the name)."""
    ci = (ci or "").strip()
    kor_name = (kor_name or "").strip()
    problem = ci_problem(ci, columns[0]) or name_problem(kor_name, columns[1])
    return problem or Customer(ci, kor_name)
