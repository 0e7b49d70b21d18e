"""How a table file is laid out, decided from its first bytes and rows; pure functions.

    encoding   a BOM (UTF-8, UTF-16 LE/BE), else UTF-8 if every byte decodes, else what
               charset detection guesses among the codecs the caller reads (CP949)
    delimiter  the first of , ; TAB | under which one of the first rows holds the columns
    header     the first of the first HEADER_SEARCH rows that holds every needed column

Rows above the header (report titles, blank rows) are neither data nor rejects.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from batch.contract import Column
from batch.errors import InputError

HEADER_SEARCH = 20
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# A codec and the superset that reads every file the codec reads, and what Excel writes.
SUPERSETS = {"utf_8": "utf-8-sig", "euc_kr": "cp949"}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (b"\xfe\xff", "utf-16"))
_NUMBER_LIKE = re.compile(r"\d{5}|^\d[\d,.\-/: ]*$")  # ids, amounts, dates
_CODE_LIKE = re.compile(r"[A-Za-z0-9+/=]{24,}")  # an identifier, a token


def bom_encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark announces, if the bytes start with one."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return None


def reading_codec(name: str) -> str:
    """The codec to read a named encoding with: UTF-8 tolerates a BOM, EUC-KR reads as CP949."""
    canonical = codecs.lookup(name).name.replace("-", "_")
    return SUPERSETS.get(canonical, name)


def label(encoding: str | None) -> str:
    """An encoding as people name it: UTF-8, CP949, UTF-16."""
    if encoding is None:
        return "binary"
    name = codecs.lookup(encoding).name
    return {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "utf-16": "UTF-16"}.get(name, name.upper())


def delimiter_from(text: str) -> str:
    """A delimiter as the user names it: `,` `;` `|`, `tab` or a backslash-t."""
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(text.strip().lower(), text)
    if len(value) != 1 or value in '"\r\n':
        raise ValueError(f"{text!r} is not one character (or tab)")
    return value


def split(lines: Sequence[str], delimiter: str) -> list[list[str]]:
    """Records of lines under one delimiter (a quoted field may span lines)."""
    records: list[list[str]] = []
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        try:
            records.append(next(reader))
        except StopIteration:
            return records
        except csv.Error:
            records.append([])


def names(record: Sequence[str | None]) -> list[str]:
    """Header cells as column names: trimmed, no BOM, no empty tail."""
    found = [(value or "").strip().lstrip("\ufeff").strip() for value in record]
    while found and not found[-1]:
        found.pop()
    return found


def is_blank(record: Sequence[str | None]) -> bool:
    """A row of empty cells (or only delimiters) is not a row of data."""
    return not any(value and value.strip() for value in record)


@dataclass(frozen=True, slots=True)
class Header:
    """Where the header is: its delimiter (text only) and its index among the records."""

    delimiter: str | None
    index: int
    columns: list[str]


def find_header(
    candidates: Mapping[str | None, Sequence[Sequence[str | None]]],
    needed: Sequence[str],
    at: int | None = None,
) -> Header | None:
    """The first record (within HEADER_SEARCH, or exactly `at`) holding every needed name.

    `candidates` maps each delimiter to try (None for spreadsheets) to its records; the
    first delimiter, in the mapping's order, whose earliest such record is earliest wins.
    """
    best: Header | None = None
    for delimiter, records in candidates.items():
        window = range(at, at + 1) if at is not None else range(min(HEADER_SEARCH, len(records)))
        for index in window:
            if index >= len(records) or (not needed and is_blank(records[index])):
                continue
            columns = names(records[index])
            if all(name in columns for name in needed):
                if best is None or index < best.index:
                    best = Header(delimiter, index, columns)
                break
    return best


def closest(
    candidates: Mapping[str | None, Sequence[Sequence[str | None]]],
    needed: Sequence[str],
    at: int | None = None,
) -> Header | None:
    """The record most like a header when none holds every needed name, for the message.

    Most needed names first, then most filled cells; the delimiter splitting it widest.
    """
    best: tuple[int, int, int] | None = None
    found: Header | None = None
    window = range(at, at + 1) if at is not None else range(HEADER_SEARCH)
    for delimiter, records in candidates.items():
        for index in window:
            if index >= len(records):
                break
            columns = names(records[index])
            score = (sum(n in columns for n in needed), sum(1 for c in columns if c), -index)
            if columns and (best is None or score > best):
                best, found = score, Header(delimiter, index, columns)
    return found


def looks_like_data(record: Sequence[str | None]) -> bool:
    """True when a row holds values rather than names: long codes, numbers, dates."""
    return any(value and _data_like(value.strip()) for value in record)


def _data_like(value: str) -> bool:
    if _NUMBER_LIKE.search(value):
        return True
    codes = _CODE_LIKE.findall(value)
    return any(any(c.isdigit() or c in "+/" for c in code) for code in codes)


def shown(columns: Sequence[str], limit: int = 8) -> str:
    """Column names for a message: quoted, cut short, at most `limit` of them."""
    listed = ", ".join(repr(c[:24]) for c in columns[:limit])
    return f"{listed}, …" if len(columns) > limit else listed


def delimiter_name(delimiter: str | None) -> str | None:
    if delimiter is None:
        return None
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))


# Where a header may be: rows by sheet (None for a text file), as read.
Candidates = Mapping[str | None, Sequence[Sequence[str | None]]]


def header_or_error(
    candidates: Candidates, needed: Sequence[Column], at: int | None, where: str
) -> Header:
    """The header row; else an InputError that prints no value of a row that looks like data."""
    wanted = [c.name for c in needed]
    header = find_header(candidates, wanted, at)
    if header is not None:
        return header
    scope = f"row {at + 1}" if at is not None else f"its first {HEADER_SEARCH} rows"
    near = closest(candidates, wanted, at)
    if near is None:
        empty = "is empty" if at is not None else "are empty"
        raise InputError(f"{where} has no header: {scope} {empty}", setting="header_row")
    missing = next(c for c in needed if c.name not in near.columns)
    records = candidates[near.delimiter]
    if looks_like_data(records[near.index]):
        first = next(i for i, r in enumerate(records) if not is_blank(r))
        which = "the first row" if near.index == first else f"row {near.index + 1}"
        raise InputError(
            f"{where} has no column {missing.name!r} in {scope}, and {which} looks like "
            "data: is the header missing?",
            setting=missing.setting,
        )
    raise InputError(
        f"{where} has no column {missing.name!r} (row {near.index + 1}, the closest to a "
        f"header, has {shown(near.columns)})",
        setting=missing.setting,
        suggestions=suggestions(needed, near.columns),
    )


def suggestions(needed: Sequence[Column], found: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """For each needed column missing from `found`: the header it likely is (case, alias)."""
    by_fold = {name.strip().casefold(): name for name in reversed(found) if name}
    pairs = []
    for column in needed:
        if column.name in found or not column.suggest:
            continue
        for guess in (column.name, *column.aliases):
            if guess.casefold() in by_fold:
                pairs.append((column.setting, by_fold[guess.casefold()]))
                break
    return tuple(pairs)


def numbered(rows: Iterable[tuple[int, list[str | None]]], limit: int) -> list[list[str | None]]:
    """Rows 1..limit as a list (index = row number - 1), empty where the sheet has none."""
    records: list[list[str | None]] = []
    for number, cells in rows:
        if number > limit:
            break
        records.extend([] for _ in range(number - 1 - len(records)))
        records.append(cells)
    return records


def samples(
    header: Header, records: Sequence[Sequence[str | None]], count: int
) -> list[dict[str, str | None]]:
    """The first `count` non-blank rows under the header, as values under its names."""
    found: list[dict[str, str | None]] = []
    for record in records[header.index + 1 :]:
        if len(found) == count:
            break
        if not is_blank(record):
            found.append(dict(zip(header.columns, (v or None for v in record), strict=False)))
    return found
