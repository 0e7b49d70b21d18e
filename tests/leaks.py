"""The review's scan: every byte a run left behind, searched for pieces of CIs and keys.

A piece of a CI is any 16 characters of it, in its raw, url-safe, percent-encoded, hex or
base64 form; a piece of a key is any 4 characters of it, also with its punctuation turned
into spaces. Parquet, SQLite, DuckDB and gzip files are searched inside as well as raw.
"""

from __future__ import annotations

import base64
import gzip
import re
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

CI_PIECE = 16
KEY_PIECE = 4
_RUN = re.compile(r"[A-Za-z0-9+/=_%-]{16,}")


def ci_forms(ci: str) -> list[str]:
    return [
        ci,
        ci.replace("+", "-").replace("/", "_"),
        quote(ci, safe=""),
        quote(ci, safe="").lower(),
        ci.encode().hex(),
        ci.encode().hex().upper(),
        base64.b64encode(ci.encode()).decode(),
        base64.urlsafe_b64encode(ci.encode()).decode(),
    ]


def key_forms(key: str) -> list[str]:
    return [key, "".join(c if c.isalnum() else " " for c in key), quote(key, safe="")]


def texts_under(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every file below `folder` as text: raw, and what its container holds."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        yield path, data.decode("utf-8", errors="replace")
        inside = _inside(path, data)
        if inside:
            yield path, inside


def _inside(path: Path, data: bytes) -> str:
    if data[:4] == b"PAR1":
        import pyarrow.parquet as pq  # noqa: PLC0415

        table = pq.read_table(path)
        return str(table.to_pylist()) + str(table.schema) + str(table.schema.metadata)
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data).decode("utf-8", errors="replace")
    if data[:16] == b"SQLite format 3\x00":
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()
    if data[8:12] == b"DUCK":
        import duckdb  # noqa: PLC0415

        with duckdb.connect(str(path), read_only=True) as db:
            tables = [row[0] for row in db.execute("SHOW TABLES").fetchall()]
            return "\n".join(
                str(db.execute(f'SELECT * FROM "{name}"').fetchall()) + name for name in tables
            )
    return ""


def pieces_found(
    texts: Iterable[tuple[str, str]], cis: Iterable[str], keys: Iterable[str]
) -> list[str]:
    """Where a piece of a CI or of a key shows, as "where: piece" (empty when none does)."""
    grams = {
        form[i : i + CI_PIECE]
        for ci in cis
        for form in ci_forms(ci)
        for i in range(len(form) - CI_PIECE + 1)
    }
    key_grams = {
        form[i : i + KEY_PIECE]
        for key in keys
        for form in key_forms(key)
        for i in range(len(form) - KEY_PIECE + 1)
    }
    found = []
    for where, text in texts:
        for run in _RUN.findall(text):
            hit = next(
                (run[i : i + CI_PIECE] for i in range(len(run) - 15) if run[i : i + 16] in grams),
                None,
            )
            if hit:
                found.append(f"{where}: CI piece {hit}")
        found += [f"{where}: key piece {gram!r}" for gram in key_grams if gram in text]
    return found
