"""Reading an input table in bounded chunks: CSV (plain or gzip) and Parquet."""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from batch.errors import InputError

_BLOCK = 1 << 20
_SNIFF_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row as read; `problem` says why it could not be read as a row, if so."""

    row: int
    values: dict[str, str | None]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class InputFile:
    """An input file, what kind it is, and how its text is encoded."""

    path: Path
    kind: str  # csv | parquet | xlsx
    compressed: bool
    encoding: str | None  # None but for CSV
    sheet: str | None = None  # xlsx: None for the first sheet
    legacy: Mapping[str, str] = field(default_factory=dict)  # detected codec -> codec to read

    @classmethod
    def open(
        cls,
        path: Path,
        encoding: str | None = None,
        sheet: str | None = None,
        legacy: Mapping[str, str] | None = None,
    ) -> InputFile:
        """Recognise the file's kind and, for CSV, its encoding unless given.

        Text that is not UTF-8 is read with `legacy[guess]` when charset detection
        guesses one of `legacy`'s codecs (e.g. EUC-KR read as its superset CP949).
        """
        legacy = dict(legacy or {})
        if not path.is_file():
            raise InputError(f"input {path} does not exist or is not a file")
        name = path.name.lower()
        if name.endswith((".parquet", ".pq")):
            return cls(path, "parquet", compressed=False, encoding=None)
        if name.endswith(".xlsx"):
            return cls(path, "xlsx", compressed=False, encoding=None, sheet=sheet)
        if name.endswith((".csv", ".csv.gz")):
            compressed = name.endswith(".gz")
            if encoding is not None:
                try:
                    codecs.lookup(encoding)
                except LookupError:
                    raise InputError(f"unknown encoding {encoding!r}") from None
            probe = cls(path, "csv", compressed, encoding, legacy=legacy)
            if encoding:
                return probe
            return cls(path, "csv", compressed, probe.detect_encoding(), legacy=legacy)
        raise InputError(f"input {path.name}: expected .csv, .csv.gz, .parquet or .xlsx")

    def fingerprint(self) -> str:
        """SHA-256 of the file's bytes, so a resume can tell it is the same input."""
        digest = hashlib.sha256()
        try:
            with self.path.open("rb") as raw:
                while block := raw.read(_BLOCK):
                    digest.update(block)
        except OSError as exc:
            raise InputError(f"input {self.path.name} cannot be read: {exc.strerror}") from None
        return digest.hexdigest()

    def detect_encoding(self) -> str:
        """UTF-8 (BOM or not) if every byte decodes; else CP949 if it looks Korean."""
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        sample = b""
        try:
            with self._binary() as stream:
                while block := stream.read(_BLOCK):
                    if len(sample) < _SNIFF_BYTES:
                        sample += block[: _SNIFF_BYTES - len(sample)]
                    decoder.decode(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            pass
        except (OSError, EOFError) as exc:
            raise InputError(f"input {self.path.name} cannot be read: {exc}") from None
        else:
            return "utf-8-sig"
        # Imported here: detection is needed only for legacy exports, and it is slow to import.
        import charset_normalizer  # noqa: PLC0415

        matches = charset_normalizer.from_bytes(sample)
        guesses = [m.encoding for m in matches]
        for guess in guesses:
            if guess in self.legacy:
                return self.legacy[guess]
        seen = guesses[0] if guesses else "unknown"
        known = "/".join(sorted({c.upper() for c in self.legacy.values()}))
        raise InputError(
            f"input {self.path.name} is neither UTF-8 nor {known or 'a known encoding'} "
            f"(looks like {seen})",
            setting="encoding",
        )

    def iter_chunks(self, chunk_rows: int, skip_rows: int = 0) -> Iterator[list[RawRow]]:
        """Rows after the first `skip_rows`, `chunk_rows` at a time, never the whole file."""
        readers = {"csv": self._iter_csv, "xlsx": self._iter_xlsx}
        rows = readers[self.kind]() if self.kind in readers else self._iter_parquet(chunk_rows)
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

    def columns(self) -> list[str]:
        """The header's column names."""
        if self.kind == "parquet":
            return list(self._parquet().schema_arrow.names)
        if self.kind == "xlsx":
            with self._worksheet() as rows:
                return [_as_text(v) or "" for v in next(rows, ())]
        with self._text() as text:
            try:
                header = next(csv.reader(text), [])
            except (UnicodeDecodeError, csv.Error) as exc:
                raise InputError(f"input {self.path.name}: header cannot be read ({exc})") from None
        return [name.strip() for name in header]

    def _binary(self) -> IO[bytes]:
        if self.compressed:
            return cast("IO[bytes]", gzip.open(self.path, "rb"))
        return self.path.open("rb")

    def _text(self) -> IO[str]:
        encoding = self.encoding or "utf-8-sig"
        if self.compressed:
            return gzip.open(self.path, "rt", encoding=encoding, newline="")
        return self.path.open(encoding=encoding, newline="")

    def _iter_csv(self) -> Iterator[RawRow]:
        number = 0
        try:
            with self._text() as text:
                reader = csv.reader(text)
                header = [name.strip() for name in next(reader, [])]
                if not header:
                    raise InputError(f"input {self.path.name} is empty: no header row")
                for fields in reader:
                    if not fields:
                        continue  # a blank line is not a row
                    number += 1
                    if len(fields) != len(header):
                        yield RawRow(
                            number,
                            dict(zip(header, fields, strict=False)),
                            f"has {len(fields)} fields where the header has {len(header)}",
                        )
                        continue
                    yield RawRow(number, dict(zip(header, fields, strict=True)))
        except UnicodeDecodeError:
            raise InputError(
                f"input {self.path.name}: row {number + 1} is not valid {self.encoding}",
                setting="encoding",
            ) from None
        except csv.Error as exc:
            raise InputError(f"input {self.path.name}: row {number + 1}: {exc}") from None
        except (OSError, EOFError) as exc:
            raise InputError(f"input {self.path.name} cannot be read: {exc}") from None

    def _parquet(self) -> Any:
        import pyarrow.parquet as pq  # noqa: PLC0415  (lazy: keeps --help fast)

        try:
            return pq.ParquetFile(self.path)
        except Exception as exc:
            raise InputError(f"input {self.path.name} is not a readable Parquet file") from exc

    def _iter_parquet(self, chunk_rows: int) -> Iterator[RawRow]:
        number = 0
        for batch in self._parquet().iter_batches(batch_size=chunk_rows):
            for record in batch.to_pylist():
                number += 1
                yield RawRow(number, {str(k): _as_text(v) for k, v in record.items()})

    @contextlib.contextmanager
    def _worksheet(self) -> Iterator[Iterator[tuple[Any, ...]]]:
        import openpyxl  # noqa: PLC0415  (lazy: only analysts' inputs need it)

        try:
            book = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:
            raise InputError(f"input {self.path.name} is not a readable .xlsx file") from exc
        try:
            if self.sheet is not None and self.sheet not in book.sheetnames:
                shown = ", ".join(book.sheetnames[:10])
                raise InputError(f"input {self.path.name} has no sheet {self.sheet!r} ({shown})")
            sheet = book[self.sheet] if self.sheet else book.worksheets[0]
            yield sheet.iter_rows(values_only=True)
        finally:
            book.close()

    def _iter_xlsx(self) -> Iterator[RawRow]:
        number = 0
        with self._worksheet() as rows:
            header = [(_as_text(v) or "").strip() for v in next(rows, ())]
            for cells in rows:
                if all(v is None for v in cells):
                    continue  # an empty sheet row is not a row
                number += 1
                values = [_as_text(v) for v in cells]
                yield RawRow(number, dict(zip(header, values, strict=False)))


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel keeps whole numbers (ids) as floats
    return str(value)
