"""Loading a published night into a database for BI, all of a night or none of it.

Each sink holds tables `reconciled`, `accounts`, `changes` (each with `run_date`) and
`runs`. A load deletes that date's rows and inserts the night's in one
transaction, so a dashboard never sees half a night and a rerun replaces, never
doubles. `runs` mirrors the dataset's run log.

A DuckDB file is written in the storage format of DuckDB 1.0 (`STORAGE_VERSION`), so
any DuckDB CLI from 1.0 on opens it, whichever newer library wrote it.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from batch import RunError, UsageError
from jobs.dataset.changes import duckdb_connection
from jobs.dataset.summary import SINKS_LOADED

TABLES = ("reconciled", "accounts", "changes")
DUCKDB_STORAGE = "v1.0.0"  # the oldest DuckDB release that opens the file


class SinkError(RunError):
    """The outputs are published, but loading them into a sink failed."""

    exit_code = 5


def check_sink(url: str) -> str:
    """Validate a sink URL before the run starts; return its kind."""
    parts = urlsplit(url)
    if parts.scheme == "duckdb" and parts.path:
        return "duckdb"
    if parts.scheme in ("postgresql", "postgres"):
        if parts.password or _password_in_query(parts.query):
            # A password in the URL shows in `ps`, shell history and cron's mail.
            raise UsageError(
                "--sink must not carry a password: set PGPASSWORD (or use ~/.pgpass) instead"
            )
        return "postgresql"
    raise UsageError(f"--sink {parts.scheme}://…: expected duckdb:///path or postgresql://…")


def check_sink_file(url: str, *, raw_cis: bool) -> None:
    """A DuckDB file already there must be ours and, when it gets raw CIs, closed to others.

    The same rule as --file-mode: a world-readable file of raw CIs is refused.
    """
    parts = urlsplit(url)
    if parts.scheme != "duckdb" or not os.path.lexists(parts.path):
        return
    info = os.lstat(parts.path)
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(f"--sink {parts.path} is a link; name the file itself")
    if not stat.S_ISREG(info.st_mode):
        return  # not a database at all: the load says so (exit 5)
    if info.st_uid != os.geteuid():
        raise UsageError(f"--sink {parts.path} belongs to another user (uid {info.st_uid})")
    if raw_cis and info.st_mode & stat.S_IROTH:
        raise UsageError(
            f"--sink {parts.path} can be read by others (mode {stat.S_IMODE(info.st_mode):o}) "
            f"and would get raw CIs: run chmod o-r {parts.path}, or add --pseudonymize"
        )


def _password_in_query(query: str) -> bool:
    """libpq takes `password=` in the query, and a whole conninfo in `dbname=` or `service`."""
    for key, value in parse_qsl(query, keep_blank_values=True):
        lowered = key.lower()
        # sslpassword (a client key's) too: every *password* is a secret in argv.
        if "password" in lowered or lowered == "passfile" or "password" in value.lower():
            return True
    return False


def load(
    url: str,
    published: Mapping[str, Path],
    run_date: dt.date,
    runs_file: Path,
    run_id: str = "",
) -> None:
    """Load one night's tables (table -> its file) and the run log into the sink at `url`.

    The sink's copy of the run log says this run's `sinks` is `loaded`: it commits with the
    night, so there it is true (the dataset's own log says so once every sink is loaded)."""
    files = {t: published[t] for t in TABLES if t in published}
    try:
        if check_sink(url) == "duckdb":
            _load_duckdb(urlsplit(url).path, files, run_date, runs_file, run_id)
        else:
            _load_postgresql(url, files, run_date, runs_file, run_id)
    except RunError:
        raise
    except Exception as exc:
        raise SinkError(
            f"outputs are published, but loading {urlsplit(url).scheme} failed: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        ) from exc


def _load_duckdb(
    path: str, files: dict[str, Path], run_date: dt.date, runs_file: Path, run_id: str
) -> None:

    with duckdb_connection() as con:
        con.execute(f"ATTACH $path AS sink (STORAGE_VERSION '{DUCKDB_STORAGE}')", {"path": path})
        con.execute("USE sink")
        con.execute("BEGIN")
        for table, file in files.items():
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {table} AS "  # noqa: S608  (names are ours)
                "SELECT *, NULL::DATE AS run_date "
                "FROM read_parquet($f, hive_partitioning = false) LIMIT 0",
                {"f": str(file)},
            )
            _add_new_columns_duckdb(con, table, file)
            con.execute(f"DELETE FROM {table} WHERE run_date = $d", {"d": run_date})  # noqa: S608
            con.execute(
                f"INSERT INTO {table} BY NAME "  # noqa: S608
                "SELECT *, $d::DATE AS run_date FROM read_parquet($f, hive_partitioning = false)",
                {"d": run_date, "f": str(file)},
            )
        con.execute(
            "CREATE TABLE IF NOT EXISTS runs AS "
            "SELECT * FROM read_parquet($f, hive_partitioning = false) LIMIT 0",
            {"f": str(runs_file)},
        )
        _add_new_columns_duckdb(con, "runs", runs_file)
        con.execute("DELETE FROM runs")
        con.execute(
            "INSERT INTO runs BY NAME SELECT * FROM read_parquet($f, hive_partitioning = false)",
            {"f": str(runs_file)},
        )
        con.execute(
            "UPDATE runs SET sinks = $done WHERE run_id = $r", {"done": SINKS_LOADED, "r": run_id}
        )
        con.execute("COMMIT")
        con.execute("USE memory")
        con.execute("DETACH sink")


def _add_new_columns_duckdb(con: Any, table: str, file: Path) -> None:
    """A table made by an earlier schema version gets the columns added since, as nulls."""
    found = con.execute(
        "DESCRIBE SELECT * FROM read_parquet($f, hive_partitioning = false)", {"f": str(file)}
    ).fetchall()
    for name, kind, *_ in found:
        con.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{name}" {kind}')


_PG_TYPES = {
    "string": "text",
    "large_string": "text",
    "int64": "bigint",
    "int32": "integer",
    "bool": "boolean",
    "date32[day]": "date",
    "double": "double precision",
}


def _pg_type(arrow_type: Any) -> str:
    text = str(arrow_type)
    if text.startswith("timestamp"):
        return "timestamptz" if "tz=" in text else "timestamp"
    return _PG_TYPES.get(text, "text")


def _load_postgresql(
    url: str, files: dict[str, Path], run_date: dt.date, runs_file: Path, run_id: str
) -> None:
    import psycopg  # noqa: PLC0415  (lazy: only --sink postgresql needs it)
    import pyarrow.parquet as pq  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    with psycopg.connect(url) as con, con.transaction(), con.cursor() as cur:
        loads = [(table, file, True) for table, file in files.items()]
        loads.append(("runs", runs_file, False))
        for table, file, dated in loads:
            source = pq.ParquetFile(file)
            schema = source.schema_arrow
            columns: list[sql.Composable] = [
                sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_pg_type(f.type)))
                for f in schema
            ]
            if dated:
                columns.append(sql.SQL("run_date date NOT NULL"))
            cur.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                    sql.Identifier(table), sql.SQL(", ").join(columns)
                )
            )
            cur.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s AND table_schema = current_schema()",
                (table,),
            )
            known = {name for (name,) in cur.fetchall()}
            # A later schema's columns, into a table an older one made. ALTER only when one
            # is missing: it waits for every open reader of the table (a dashboard's, say).
            for field, column in zip(schema, columns, strict=False):
                if field.name not in known:
                    cur.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(
                            sql.Identifier(table), column
                        )
                    )
            if dated:
                cur.execute(
                    sql.SQL("DELETE FROM {} WHERE run_date = %s").format(sql.Identifier(table)),
                    (run_date,),
                )
            else:
                cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
            names = [*schema.names, *(["run_date"] if dated else [])]
            copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
            )
            with cur.copy(copy) as pipe:
                for batch in source.iter_batches(batch_size=20_000):
                    for row in batch.to_pylist():
                        pipe.write_row([*row.values(), *([run_date] if dated else [])])
        cur.execute("UPDATE runs SET sinks = %s WHERE run_id = %s", (SINKS_LOADED, run_id))
