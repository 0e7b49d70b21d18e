"""Output files that appear whole or not at all: written aside, then renamed."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from batch.store import check_tree

_UTF8_BOM = "\ufeff"


class OutputSet:
    """A set of files written under temporary names and renamed into place together.

    Nothing is renamed until every file is complete and fsynced, so a crash leaves
    either the old set or the new one plus stray temporaries (swept on next use).
    Temporaries sit in `folder`; `place(name)` may put the final file elsewhere on the
    same file system (a dataset's table folders). Files get `mode` before they appear.
    """

    def __init__(
        self, folder: Path, place: Callable[[str], Path] | None = None, mode: int = 0o600
    ) -> None:
        self.folder = folder
        self._place = place
        self._mode = mode
        self._pending: list[tuple[Path, str]] = []
        sweep_temporaries(folder)

    def aside(self, name: str) -> Path:
        """A temporary path for `name`, to be renamed by `publish()`."""
        temporary = self.folder / f".{name}.partial-{os.getpid()}"
        self._pending.append((temporary, name))
        return temporary

    def publish(self) -> list[Path]:
        """Rename every file into place in the order they were set aside; make it durable."""
        for temporary, _ in self._pending:
            # fchmod on the file we opened, never through a link someone put in its place.
            fd = os.open(temporary, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fchmod(fd, self._mode)
                os.fsync(fd)
            finally:
                os.close(fd)
        published = []
        for temporary, name in self._pending:
            final = self._place(name) if self._place else self.folder / name
            temporary.replace(final)
            published.append(final)
        for folder in dict.fromkeys(path.parent for path in published):
            fsync_path(folder)
        self._pending.clear()
        return published

    def discard_last(self) -> None:
        """Forget the file last set aside (it was not written after all)."""
        temporary, _ = self._pending.pop()
        temporary.unlink(missing_ok=True)

    def discard(self) -> None:
        for temporary, _ in self._pending:
            temporary.unlink(missing_ok=True)
        self._pending.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()


def dir_mode(file_mode: int) -> int:
    """The folder mode that goes with a file mode: 0600 -> 0700, 0640 -> 0750, 0644 -> 0755."""
    return file_mode | ((file_mode & 0o444) >> 2)


def make_dirs(path: Path, mode: int, chmod_from: Path | None = None) -> None:
    """Make `path` and its missing parents with `mode` (whatever the umask); folders from
    `chmod_from` down to `path` that exist already get `mode` too. A setgid bit stays, so a
    root made `chmod g+s` for a group hands that group to everything under it."""
    check_tree(chmod_from or path, path)  # no link followed, nobody else's folder chmodded
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
    targets = set(missing)
    if chmod_from is not None:
        probe = path
        while True:
            targets.add(probe)
            if probe in (chmod_from, probe.parent):
                break
            probe = probe.parent
    for folder in targets:
        current = stat.S_IMODE(folder.stat().st_mode)
        if current & 0o777 != mode:
            folder.chmod(mode | (current & (stat.S_ISGID | stat.S_ISVTX)))  # keep a setgid group


def sweep_temporaries(folder: Path) -> None:
    """Remove temporaries a killed run left behind."""
    for stray in folder.glob(".*.partial-*"):
        stray.unlink(missing_ok=True)


class TableWriter:
    """Writes a typed table in row groups as Parquet, or as CSV with a BOM for Excel."""

    def __init__(
        self, path: Path, schema: Any, file_format: str, dictionary: Sequence[str] = ()
    ) -> None:
        import pyarrow as pa  # noqa: PLC0415  (lazy: keeps --help fast)

        self._pa = pa
        self.schema = schema
        self.rows = 0
        if file_format == "parquet":
            import pyarrow.parquet as pq  # noqa: PLC0415

            # Only low-cardinality columns are dictionary-encoded; a key column never repeats.
            self._writer: Any = pq.ParquetWriter(
                path, schema, compression="zstd", use_dictionary=list(dictionary) or False
            )
            self._stream = None
        else:
            import pyarrow.csv as pacsv  # noqa: PLC0415

            self._stream = path.open("wb")
            self._stream.write(_UTF8_BOM.encode())
            self._writer = pacsv.CSVWriter(self._stream, schema)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.write_table(self._pa.Table.from_pylist(list(rows), schema=self.schema))

    def write_table(self, table: Any) -> None:
        table = table.cast(self.schema)
        self._writer.write_table(defuse_table(table) if self._stream is not None else table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        if self._stream is not None:
            self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): a
# user-chosen value such as "=HYPERLINK(…)" must stay text. OWASP's advice: a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def defuse_table(table: Any) -> Any:
    """The same, for every string column of an Arrow table bound for CSV."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    for index, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = table.column(index)
            risky = pc.match_substring_regex(column, pattern="^[=+\\-@\t\r]")
            quoted = pc.binary_join_element_wise("'", column, "")
            table = table.set_column(index, field, pc.if_else(risky, quoted, column))
    return table


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def fsync_path(path: Path) -> None:
    """Make a file's data, or a folder's entries (renames), durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
