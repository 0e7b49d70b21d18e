"""A run's progress over time: a sample a second while asking, kept beside the store.

Each sample is a JSON line in `.timeline.jsonl` in the run's folder: when it was taken,
when the asking began, items finished (in all and by the job's labels) and the asker's
numeric figures (cumulative counts, such as requests). A resumed run appends, so the
file holds every asking session of the folder. At the end the engine writes it as the
`timeline` table, which a report turns into the rate over the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import orjson

from batch.store import open_private

TIMELINE_NAME = ".timeline.jsonl"
TIMELINE_TABLE = "timeline"


class Timeline:
    """Appends a sample every `interval` seconds while open, and a last one on close."""

    def __init__(
        self,
        path: Path,
        sample: Callable[[], Mapping[str, Any]],
        interval: float = 1.0,
    ) -> None:
        self._path, self._sample, self._interval = path, sample, interval
        self._began = dt.datetime.now(dt.UTC)
        self._task: asyncio.Task[None] | None = None
        self._file: Any = None

    async def __aenter__(self) -> Self:
        # Never through a link planted under the name: it would append to its target.
        fd = open_private(self._path, os.O_WRONLY | os.O_APPEND)
        self._file = os.fdopen(fd, "ab")
        self._task = asyncio.create_task(self._every())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._write()
        self._file.close()

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._write()

    def _write(self) -> None:
        now = dt.datetime.now(dt.UTC)
        line = {
            "at": now.isoformat(),
            "session_started": self._began.isoformat(),
            "elapsed_s": round((now - self._began).total_seconds(), 3),
            **{k: v for k, v in self._sample().items() if _is_number(v)},
        }
        self._file.write(orjson.dumps(line) + b"\n")
        self._file.flush()


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The samples of a folder's timeline file; a last line cut short by a kill is skipped."""
    samples = []
    with contextlib.suppress(FileNotFoundError), path.open("rb") as lines:
        for line in lines:
            with contextlib.suppress(orjson.JSONDecodeError):
                samples.append(orjson.loads(line))
    return samples


def timeline_table(samples: list[dict[str, Any]], schema: Any = None) -> Any:
    """The samples as an Arrow table: with `schema`, exactly its columns (nulls where a sample
    has none), so that every night's table reads alike; else the samples' own columns."""
    import pyarrow as pa  # noqa: PLC0415

    if schema is None:
        schema = _inferred(samples)
    columns = []
    for column in schema:
        values = [sample.get(column.name) for sample in samples]
        if pa.types.is_timestamp(column.type):
            values = [dt.datetime.fromisoformat(v) if v else None for v in values]
        columns.append(pa.array(values, type=column.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _inferred(samples: list[dict[str, Any]]) -> Any:
    """Times as UTC timestamps, counts int64, rates double, in the order they first occur."""
    import pyarrow as pa  # noqa: PLC0415

    fields = []
    for name in dict.fromkeys(name for sample in samples for name in sample):
        values = [sample.get(name) for sample in samples]
        if name in ("at", "session_started"):
            kind = pa.timestamp("us", tz="UTC")
        elif any(isinstance(v, float) for v in values) or name == "elapsed_s":
            kind = pa.float64()
        else:
            kind = pa.int64()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def write_timeline(samples_file: Path, path: Path, schema: Any = None) -> bool:
    """Write the folder's samples as Parquet at `path`; False when there are none to write.

    With a `schema`, a run that asked nothing still writes its (empty) table, so that a
    rerun's night never keeps the timeline of the run it replaced.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415

    samples = read_samples(samples_file)
    if not samples and schema is None:
        return False
    pq.write_table(timeline_table(samples, schema), path, compression="zstd")
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
