"""Reading an input table in bounded chunks: delimited text (plain or gzip), spreadsheets, Parquet.

    InputFile.open(path, …)   what kind of file it is and, for text, its encoding
    .layout(columns)          where the header is, and the delimiter (batch.inputs.sniff)
    .iter_chunks(layout, n)   the data rows under the header, n at a time, never all at once

A row's number is the one a person sees in Excel or LibreOffice: with the header on row 3
the first data row is 4, and blank rows count but are not rows of data. Parquet has no
header row: its first record is row 1.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from batch.contract import Column
from batch.errors import InputError
from batch.inputs import delimited, encoding, sniff
from batch.inputs.sheets import SHEET_SUFFIXES, WorkbookReader, display

_BLOCK = 1 << 20
SAMPLES = 3
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
KINDS = ".csv, .tsv, .txt (or those gzipped), .parquet, .xlsx, .xls or .ods"


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row as read; `problem` says why it could not be read as a row, if so."""

    row: int
    values: dict[str, str | None]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """How the input is read: what a dry run shows."""

    encoding: str | None
    delimiter: str | None
    header_row: int | None  # None for Parquet, which has no header row
    sheet: str | None
    columns: list[str]
    samples: list[dict[str, str | None]] = field(default_factory=list)  # raw: mask to show

    def describe(self) -> dict[str, Any]:
        return {
            "encoding": sniff.label(self.encoding) if self.encoding else None,
            "delimiter": sniff.delimiter_name(self.delimiter),
            "header_row": self.header_row,
            "sheet": self.sheet,
            "columns": list(self.columns),
        }


@dataclass(frozen=True, slots=True)
class InputFile:
    """An input file, what kind it is, and the reading options the user gave."""

    path: Path
    kind: str  # text | parquet | sheet
    compressed: bool = False
    encoding: str | None = None  # text only: detected, or given
    encoding_given: bool = False  # a wrong guess is ours; a wrong given encoding is not
    sheet: str | None = None
    delimiter: str | None = None  # given; else found with the header
    header_row: int | None = None  # given; else found
    legacy: Mapping[str, str] = field(default_factory=dict)  # detected codec -> codec to read
    stat: tuple[int, int, int] = (0, 0, 0)  # size, modification time, inode when opened

    @classmethod
    def open(
        cls,
        path: Path,
        encoding: str | None = None,
        sheet: str | None = None,
        legacy: Mapping[str, str] | None = None,
        *,
        delimiter: str | None = None,
        header_row: int | None = None,
    ) -> InputFile:
        """Recognise the file's kind and, for text, its encoding unless given.

        Text that is neither UTF-8 nor UTF-16 is read with `legacy[guess]` when charset
        detection guesses one of `legacy`'s codecs (e.g. EUC-KR read as its superset CP949).
        """
        if not path.is_file():
            raise InputError(f"input {path} does not exist or is not a file")
        info = path.stat()
        options: dict[str, Any] = {
            "path": path,
            "sheet": sheet,
            "header_row": header_row,
            "legacy": dict(legacy or {}),
            "stat": (info.st_size, info.st_mtime_ns, info.st_ino),
        }
        name = path.name.lower()
        if name.endswith((".parquet", ".pq")):
            return cls(kind="parquet", **options)
        if name.endswith(SHEET_SUFFIXES):
            return cls(kind="sheet", **options)
        if not name.removesuffix(".gz").endswith(TEXT_SUFFIXES):
            raise InputError(f"input {path.name}: expected {KINDS}")
        options.update(kind="text", compressed=name.endswith(".gz"), delimiter=delimiter)
        if encoding is not None:
            try:
                codec = sniff.reading_codec(encoding)
                return cls(encoding=codec, encoding_given=True, **options)
            except LookupError:
                raise InputError(f"unknown encoding {encoding!r}", setting="encoding") from None
        if info.st_size == 0:
            return cls(encoding="utf-8-sig", **options)
        return cls(encoding=cls(**options).detect_encoding(), **options)

    def fingerprint(self) -> str:
        """SHA-256 of the file's bytes, so a resume can tell it is the same input."""
        digest = hashlib.sha256()
        with _Reading(self.path.name), self.path.open("rb") as raw:
            while block := raw.read(_BLOCK):
                digest.update(block)
        return digest.hexdigest()

    def unchanged(self) -> bool:
        """True while the file is the one opened: same size, modification time and inode."""
        try:
            info = self.path.stat()
        except OSError:
            return False
        return (info.st_size, info.st_mtime_ns, info.st_ino) == self.stat

    def detect_encoding(self) -> str:
        """A BOM's (UTF-8, UTF-16); UTF-8 if every byte decodes; else CP949 if it looks Korean."""
        with _Reading(self.path.name), self._binary() as stream:
            return encoding.detect(stream, self.path.name, self.legacy)

    def layout(self, needed: Sequence[Column]) -> Layout:
        """Find the header (and the delimiter); an InputError naming what is missing if none."""
        if self.kind == "parquet":
            return self._parquet_layout(needed)
        if self.kind == "sheet":
            return self._sheet_layout(needed)
        return self._text_layout(needed)

    def iter_chunks(
        self, layout: Layout, chunk_rows: int, skip_rows: int = 0
    ) -> Iterator[list[RawRow]]:
        """Rows after row `skip_rows`, `chunk_rows` at a time, never the whole file."""
        if self.kind == "parquet":
            rows = self._iter_parquet(chunk_rows)
        else:
            rows = self._iter_sheet(layout) if self.kind == "sheet" else self._iter_text(layout)
        chunk: list[RawRow] = []
        for raw in rows:
            if raw.row <= skip_rows:
                continue
            chunk.append(raw)
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    # Delimited text

    def _binary(self) -> IO[bytes]:
        if self.compressed:
            return cast("IO[bytes]", gzip.open(self.path, "rb"))
        return self.path.open("rb")

    def _text(self) -> IO[str]:
        return delimited.open_text(
            self.path, self.encoding or "utf-8-sig", compressed=self.compressed
        )

    def _text_layout(self, needed: Sequence[Column]) -> Layout:
        name = self.path.name
        with _Reading(name), self._text() as text:
            lines, overlong = delimited.head(text, 2 * self._head_rows())
        if not overlong and not any(line.strip() for line in lines):
            size = " (0 bytes)" if self.stat[0] == 0 else ""
            raise InputError(f"input {name} is empty{size}: it has no header row")
        order = [self.delimiter] if self.delimiter else delimited.delimiters(self.path)
        candidates = {d: sniff.split(lines, d or ",") for d in order}
        try:
            header = self._header(candidates, needed, f"input {name}")
        except InputError:
            records = next(iter(candidates.values()))
            bad = next((i for i, r in enumerate(records) if delimited.undecodable(r)), None)
            if bad is not None:
                raise self._undecodable(f"row {bad + 1}") from None
            if overlong:
                raise InputError(
                    f"input {name}: a line among its first rows is longer than "
                    f"{delimited.LINE_LIMIT:,} characters, and no header was found"
                ) from None
            raise
        records = candidates[header.delimiter]
        if delimited.undecodable(records[header.index]):
            raise self._undecodable(f"its header (row {header.index + 1})")
        samples = sniff.samples(header, records, SAMPLES)
        return Layout(
            self.encoding, header.delimiter, header.index + 1, None, header.columns, samples
        )

    def _undecodable(self, where: str) -> InputError:
        """Not decodable: pass an encoding, or (when one was given) another one."""
        text = f"input {self.path.name}: {where} is not valid {sniff.label(self.encoding)}"
        if not self.encoding_given:
            return InputError(text, setting="encoding")
        try:
            guess = sniff.label(replace(self, encoding=None).detect_encoding())
        except InputError:
            guess = None
        looks = f" (it looks like {guess})" if guess else ""
        return InputError(f"{text}, the encoding given{looks}", setting="encoding_given")

    def _iter_text(self, layout: Layout) -> Iterator[RawRow]:
        name, encoding = self.path.name, self.encoding
        with _Reading(name), self._text() as text:
            found = delimited.records(
                text, layout.delimiter or ",", layout.header_row or 0, name, encoding
            )
            try:
                for number, fields, unreadable in found:
                    if fields is None:
                        yield RawRow(number, {}, unreadable)
                        continue
                    values, problem = delimited.values(layout.columns, fields, encoding)
                    yield RawRow(number, values, problem)
            except InputError as error:
                where = re.search(r": (row \d+) is not valid", str(error))
                if where is None or not self.encoding_given:
                    raise
                raise self._undecodable(where.group(1)) from None

    # Spreadsheets

    def _sheet_layout(self, needed: Sequence[Column]) -> Layout:
        with _Reading(self.path.name), WorkbookReader(self.path) as book:
            sheet = book.sheet(self.sheet)
            records = sniff.numbered(book.rows(sheet), self._head_rows())
            try:
                where = f"input {self.path.name}, sheet {sheet!r},"
                header = self._header({None: records}, needed, where)
            except InputError as missing:
                raise self._other_sheets(book, sheet, needed, missing) from None
        samples = sniff.samples(header, records, SAMPLES)
        return Layout(None, None, header.index + 1, sheet, header.columns, samples)

    def _other_sheets(
        self, book: WorkbookReader, sheet: str, needed: Sequence[Column], missing: InputError
    ) -> InputError:
        """With no sheet named, say which other sheet holds the columns, or name the others."""
        others = [name for name in book.sheet_names if name != sheet]
        if self.sheet is not None or not others:
            return missing
        where = str(missing)
        wanted = [c.name for c in needed]
        for other in others[:10]:
            if sniff.find_header(
                {None: sniff.numbered(book.rows(other), sniff.HEADER_SEARCH)}, wanted
            ):
                return InputError(f"{where}; sheet {other!r} has them", setting="sheet")
        listed = ", ".join(repr(name) for name in others[:10])
        return InputError(
            f"{where}; its other sheets: {listed}",
            setting=missing.setting,
            suggestions=missing.suggestions,
        )

    def _iter_sheet(self, layout: Layout) -> Iterator[RawRow]:
        header, width = layout.header_row or 0, len(layout.columns)
        with _Reading(self.path.name), WorkbookReader(self.path) as book:
            for number, cells in book.rows(layout.sheet or book.sheet(None)):
                if number > header and not sniff.is_blank(cells):
                    padded = [*cells[:width], *[None] * (width - len(cells))]
                    yield RawRow(number, dict(zip(layout.columns, padded, strict=True)))

    # Parquet

    def _parquet(self) -> Any:
        import pyarrow.parquet as pq  # noqa: PLC0415  (lazy: keeps --help fast)

        try:
            return pq.ParquetFile(self.path)
        except Exception as exc:
            raise InputError(f"input {self.path.name} is not a readable Parquet file") from exc

    def _parquet_layout(self, needed: Sequence[Column]) -> Layout:
        columns = [str(name) for name in self._parquet().schema_arrow.names]
        for column in needed:
            if column.name not in columns:
                raise InputError(
                    f"input {self.path.name} has no column {column.name!r} "
                    f"(it has {sniff.shown(columns)})",
                    setting=column.setting,
                    suggestions=sniff.suggestions(needed, columns),
                )
        first = next(self._iter_parquet(SAMPLES), None)
        return Layout(None, None, None, None, columns, [first.values] if first else [])

    def _iter_parquet(self, chunk_rows: int) -> Iterator[RawRow]:
        number = 0
        with _Reading(self.path.name):
            for batch in self._parquet().iter_batches(batch_size=chunk_rows):
                for record in batch.to_pylist():
                    number += 1
                    yield RawRow(number, {str(k): display(v) for k, v in record.items()})

    def _head_rows(self) -> int:  # enough rows to find the header and the samples
        return (self.header_row or 0) + sniff.HEADER_SEARCH + 50

    def _header(
        self, candidates: sniff.Candidates, needed: Sequence[Column], where: str
    ) -> sniff.Header:
        at = None if self.header_row is None else self.header_row - 1
        return sniff.header_or_error(candidates, needed, at, where)


class _Reading:
    """OS and gzip errors while reading become one InputError naming the file."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: TracebackType | None
    ) -> None:
        if isinstance(exc, OSError | EOFError | gzip.BadGzipFile):
            raise InputError(f"input {self.name} cannot be read: {exc}") from None
