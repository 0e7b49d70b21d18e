"""Delimited text (CSV, TSV, Excel's "Unicode text"), plain or gzip, read with bounded lines.

Each line is read with a limit (LINE_LIMIT characters): a longer one is skipped whole and
its row rejected, so one broken field never costs the night or the machine's memory. A
byte the encoding cannot read rejects its row (UTF-16 stops the run: its pairs of bytes
leave no row to blame).
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
Values = dict[str, str | None]


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


def records(
    text: IO[str], delimiter: str, header_row: int, name: str, encoding: str | None
) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(row number, fields, problem) for every non-blank record below the header row."""
    csv.field_size_limit(LINE_LIMIT)
    overlong = Overlong()
    reader = csv.reader(bounded(text, overlong), delimiter=delimiter)
    number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            if number > header_row:
                yield number, None, f"cannot be read ({exc})"
            continue
        except UnicodeDecodeError:
            raise InputError(
                f"input {name}: row {number + 1} is not valid {sniff.label(encoding)}",
                setting="encoding",
            ) from None
        number += 1
        if overlong.seen:
            overlong.seen = False
            if number > header_row:
                yield number, None, f"is longer than {LINE_LIMIT:,} characters"
            continue
        if number > header_row and not sniff.is_blank(fields):
            yield number, fields, None


def values(
    columns: Sequence[str], fields: list[str], encoding: str | None
) -> tuple[Values, str | None]:
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
