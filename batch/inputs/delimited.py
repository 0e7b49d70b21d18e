"""Delimited text (CSV, TSV, Excel's "Unicode text"), plain or gzip, read with bounded lines.

A record is found the way a spreadsheet finds it: a line break inside quotes belongs to the
cell, so a record may span lines, and it counts as one row. A record longer than LINE_LIMIT
characters is skipped whole, to its true end (quotes respected), and its row rejected, so
one broken cell never costs the night, the rows after it, or the machine's memory. A quote
that is never closed leaves no end to find: the rest of the file would be one cell, and
the file is refused (InputError) rather than read as one rejected row. A byte the encoding
cannot read rejects its row (UTF-16 stops the run: its pairs of bytes leave no row to blame).
"""

from __future__ import annotations

import csv
import gzip
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from batch.errors import InputError
from batch.inputs import sniff

LINE_LIMIT = 1 << 20  # characters in one line of text; a longer line is a rejected row


def open_text(path: Path, encoding: str, *, compressed: bool) -> IO[str]:
    # surrogateescape keeps a byte the codec cannot read, so its row can be rejected alone.
    errors = "strict" if "16" in encoding else "surrogateescape"
    if compressed:
        return gzip.open(path, "rt", encoding=encoding, errors=errors, newline="")
    return path.open(encoding=encoding, errors=errors, newline="")


class Overlong:
    """Set when a line was cut at LINE_LIMIT: the row it belongs to is rejected."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = False


def bounded(text: IO[str], overlong: Overlong) -> Iterator[str]:
    """Lines of at most LINE_LIMIT characters: a longer one is skipped whole and flagged."""
    while line := text.readline(LINE_LIMIT):
        if len(line) >= LINE_LIMIT and not line.endswith("\n"):
            while (rest := text.readline(LINE_LIMIT)) and not rest.endswith("\n"):
                pass
            overlong.seen = True
            yield "\n"
            continue
        yield line


def head(text: IO[str], lines: int) -> tuple[list[str], bool]:
    """The first lines, each bounded, and whether one was too long (read as a blank line)."""
    overlong = Overlong()
    return list(itertools.islice(bounded(text, overlong), lines)), overlong.seen


def delimiters(path: Path) -> list[str | None]:
    """Candidates in the order tried: tab first for .tsv and .txt (Excel's "Unicode text")."""
    if path.name.lower().removesuffix(".gz").endswith((".tsv", ".txt")):
        return ["\t", ",", ";", "|"]
    return list(sniff.DELIMITERS)


# Where a record stands after some of its text, as Python's csv reader (non-strict) sees it.
_FIELD_START, _IN_FIELD, _IN_QUOTES, _QUOTE_IN_QUOTES = range(4)


def advance(state: int, text: str, delimiter: str) -> int:
    """The state after `text` (no line break at its end), jumping from quote to delimiter."""
    i, end = 0, len(text)
    while i < end:
        if state in (_QUOTE_IN_QUOTES, _FIELD_START):
            # A quote opens a field, or doubled stays inside one; anything else is field text.
            state = _IN_QUOTES if text[i] == '"' else _IN_FIELD
            i += state == _IN_QUOTES
        elif state == _IN_FIELD:  # a quote inside an unquoted field is a character
            found = text.find(delimiter, i)
            if found < 0:
                return _IN_FIELD
            i, state = found + 1, _FIELD_START
        else:
            found = text.find('"', i)
            if found < 0:
                return _IN_QUOTES
            i, state = found + 1, _QUOTE_IN_QUOTES
    return state


def logical(text: IO[str], delimiter: str, name: str) -> Iterator[str | None]:
    """Each record's text, its quoted line breaks included; None for one over LINE_LIMIT."""
    parts: list[str] = []
    size, state, line, began = 0, _FIELD_START, 0, 1
    while chunk := text.readline(LINE_LIMIT):
        ends = chunk.endswith(("\n", "\r"))
        line += ends
        state = advance(state, chunk.rstrip("\r\n") if ends else chunk, delimiter)
        size += len(chunk)
        if size <= LINE_LIMIT:
            parts.append(chunk)
        else:
            parts.clear()  # skipped to its end, never held
        if ends and state != _IN_QUOTES:
            yield "".join(parts) if size <= LINE_LIMIT else None
            parts, size, state, began = [], 0, _FIELD_START, line + 1
    if state == _IN_QUOTES:
        raise InputError(
            f"input {name}: the quote opened on line {began} is never closed, so the rest of "
            f"the file ({line - began + 1:,} lines) would be one cell; close the quote or "
            "remove it, then run again"
        )
    if size:
        yield "".join(parts) if size <= LINE_LIMIT else None


def records(
    text: IO[str], delimiter: str, header_row: int, name: str, encoding: str | None
) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(row number, fields, problem) for every non-blank record below the header row."""
    csv.field_size_limit(LINE_LIMIT)
    number = 0
    found = logical(text, delimiter, name)
    while True:
        try:
            record = next(found)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise InputError(
                f"input {name}: row {number + 1} is not valid {sniff.label(encoding)}",
                setting="encoding",
            ) from None
        number += 1
        if number <= header_row:
            continue
        if record is None:
            yield number, None, f"is longer than {LINE_LIMIT:,} characters"
            continue
        try:
            fields = next(csv.reader([record], delimiter=delimiter), [])
        except csv.Error as exc:
            yield number, None, f"cannot be read ({exc})"
            continue
        if not sniff.is_blank(fields):
            yield number, fields, None


def values(
    columns: Sequence[str], fields: list[str], encoding: str | None
) -> tuple[dict[str, str | None], str | None]:
    """A record's values under the header's names, and why it is not a row, if so."""
    width = len(columns)
    while len(fields) > width and not fields[-1].strip():
        fields.pop()  # trailing empty fields (a row of delimiters' tail) are not values
    problem = None
    if undecodable(fields):
        fields = [f.encode("utf-8", "replace").decode("utf-8") for f in fields]
        problem = f"is not valid {sniff.label(encoding)}"
    elif len(fields) != width:
        problem = f"has {len(fields)} fields where the header has {width}"
    return dict(zip(columns, (f or None for f in fields), strict=False)), problem


def undecodable(fields: Sequence[str | None]) -> bool:
    """True when a field holds a byte the encoding could not read (kept as a surrogate)."""
    try:
        "".join(f or "" for f in fields).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
