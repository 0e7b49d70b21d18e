"""A number as a spreadsheet's number format shows it: thousands, percent, currency, literals.

    shown(6084796, "#,##0")              -> "6,084,796"
    shown(0.125, "0.0%")                 -> "12.5%"
    shown(-12345, "[$₩-412]#,##0")       -> "-₩12,345"
    shown(50000, '#,##0"원"')            -> "50,000원"
    shown(-1234, "#,##0;[Red]\\-#,##0")  -> "-1,234"

What Excel and LibreOffice write to CSV for such a cell. A format this does not know (dates,
fractions, scientific, conditions, fill and padding) gives None, and the caller shows the
plain number instead. Halves round away from zero, as both programs do.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

_TOKEN = re.compile(
    r'"(?P<quoted>[^"]*)"'  # "text"
    r"|\\(?P<escaped>.)"  # \x
    r"|\[\$(?P<currency>[^\]-]*)(?:-[^\]]*)?\]"  # [$₩-412]
    r"|\[(?P<bracket>[^\]]*)\]"  # [Red], [>=100]
    r"|(?P<digits>[0#?,.]+)"  # the number's pattern
    r"|(?P<other>.)",
    re.DOTALL,
)
_COLOURS = re.compile(r"(?i)black|blue|cyan|green|magenta|red|white|yellow|color\s*\d+")
_LITERALS = frozenset(" $-+()/:!^&'~{}<>=₩€£¥%원")


def shown(value: float, fmt: str) -> str | None:
    """`value` as `fmt` shows it, or None when the format is beyond this module."""
    sections = _sections(fmt)
    if not sections or len(sections) > 4:
        return None
    section, sign = sections[0], "-" if value < 0 else ""
    if value < 0 and len(sections) >= 2:
        section, sign = sections[1], ""  # the section writes its own minus, if any
    elif value == 0 and len(sections) >= 3:
        section = sections[2]
    return _render(abs(value), section, sign)


def _sections(fmt: str) -> list[str]:
    """The format's sections, split at `;` outside quotes and brackets."""
    parts, current, quoted, bracket = [], "", False, False
    escaped = False
    for ch in fmt:
        if escaped:
            current += ch
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "[" and not quoted:
            bracket = True
        elif ch == "]" and not quoted:
            bracket = False
        elif ch == ";" and not (quoted or bracket):
            parts.append(current)
            current = ""
            continue
        current += ch
    return [*parts, current]


def _render(value: float, section: str, sign: str) -> str | None:
    pieces: list[str | None] = []  # None marks where the number goes
    pattern = ""
    for token in _TOKEN.finditer(section):
        kind = token.lastgroup
        text = token.group(kind or "other")
        if kind in ("quoted", "escaped", "currency"):
            pieces.append(text)
        elif kind == "bracket":
            if not _COLOURS.fullmatch(text):
                return None  # a condition, or a date's elapsed hours: not ours
        elif kind == "digits":
            if pattern:
                return None  # two number patterns: a fraction, say
            pattern = text
            pieces.append(None)
        elif text in _LITERALS:
            pieces.append(text)
        else:
            return None  # a date, General, scientific, fill or padding
    if not pattern.strip(",."):
        return None
    percent = sum(piece == "%" for piece in pieces)
    number = _number(value * 100**percent, pattern)
    return sign + "".join(number if piece is None else piece for piece in pieces)


def _number(value: float, pattern: str) -> str:
    # Commas that end the pattern, or its whole part, divide by a thousand each.
    bare = pattern.rstrip(",")
    whole, _, decimals = bare.partition(".")
    scaled = whole.rstrip(",")
    value /= 1000 ** (len(pattern) - len(bare) + len(whole) - len(scaled))
    places = sum(ch in "0#?" for ch in decimals)
    required = sum(ch == "0" for ch in decimals)
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    head, _, tail = f"{exact:f}".partition(".")
    tail = tail.rstrip("0").ljust(required, "0")
    head = head.lstrip("0").rjust(scaled.count("0"), "0")
    if "," in scaled and head:
        head = f"{int(head):,}".rjust(len(head), "0") if head.strip("0") else head
    return head + ("." + tail if tail or ("." in pattern and required) else "")
