"""What a job tells the engine, and all the engine knows of it.

The engine (`batch.run.lifecycle.run_batch`) runs the life cycle: lock the folder, claim
it for this input, ingest the rows, ask about every open item, export the tables,
check the accounting, publish. A job supplies the rest:

* which input columns it needs (`columns`), and whether a row is an item (`admit`);
* how to ask about an item (`asker`), giving a typed record;
* how items and records are kept in the store (`encode_*`/`decode_*`);
* its tables (`tables`) and the rows one item gives them (`rows`);
* what ties a folder to its answers (`identity`), and its words for the summary;
* under `max_age`, its latest earlier answers (`earlier`), to carry those still young.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from batch.log import Log

I = TypeVar("I")  # noqa: E741  (an item, as in the engine's docs)
R = TypeVar("R")
I_contra = TypeVar("I_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)
Values = Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Column:
    """An input column the job needs, and the setting that names another one.

    `aliases` are headers people give the column (`CI`, `성명`): a header that misses the
    name but has one of them, or the name in another case, is suggested for the setting.
    `suggest` is False for a setting that names several columns at once.
    """

    name: str
    setting: str
    aliases: tuple[str, ...] = ()
    suggest: bool = True


@dataclass(frozen=True, slots=True)
class Table:
    """An output table: its name (the file's stem), Arrow schema and dictionary columns."""

    name: str
    schema: Any
    dictionary: tuple[str, ...] = ()


SUMMARY_VIEW = "summary"  # a View of this table is the workbook's summary sheet
REJECTS_VIEW = "rejects"  # and of this one, its rejected rows (row, reason, values)


@dataclass(frozen=True, slots=True)
class View:
    """A sheet of the workbook (`--format xlsx`) for people: a table's rows, or some of them.

    `columns` are shown in that order (empty: the table's own); a column the table lacks is
    taken from the first table's row of the same item (the customer's name beside an
    account). `where` keeps the rows whose column holds one of the values. A view of
    SUMMARY_VIEW shows `labels` (count name, words) and each sheet's row count.
    """

    title: str
    table: str
    columns: tuple[str, ...] = ()
    where: tuple[str, tuple[str, ...]] | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Admitted(Generic[I]):
    """A row the job will ask about; `key` makes it distinct (a repeat is a reject).

    `question` digests what else the asking depends on (a name, say): an earlier answer
    to another question is not carried.
    """

    key: str
    item: I
    question: str = ""


@dataclass(frozen=True, slots=True)
class Earlier:
    """An item's latest earlier answer, as the store keeps it, and the run date that asked."""

    key: str
    record: dict[str, Any]
    asked_on: dt.date
    final: bool  # False: a failure, asked again before any answer that merely aged
    question: str = ""


@dataclass(frozen=True, slots=True)
class Tally:
    """What a run came to, for the job to put in its own words."""

    state: str  # done | paused | dry_run | stopped | aborted | failed
    reason: str | None
    rows: int
    rejected: int
    items: int
    unanswered: int  # never asked yet
    open_items: int  # unanswered, or answered with a failure to ask again
    counters: collections.Counter[str]
    failures: collections.Counter[str]
    written: Mapping[str, int]
    figures: Mapping[str, Any]
    resumed: bool
    accounting_ok: bool
    started_at: dt.datetime
    finished_at: dt.datetime
    extra: Mapping[str, Any] = field(default_factory=dict)


class Asker(Protocol[I_contra, R_co]):
    """Asks about one item at a time; opened once per run."""

    async def ask(self, item: I_contra) -> R_co: ...

    def figures(self) -> dict[str, Any]: ...


class Job(Protocol[I, R]):
    """A batch job as the engine runs it."""

    unit: str  # what one item is called on a progress bar
    key_name: str  # what makes an item distinct, as rejects name it
    extra_outputs: tuple[str, ...]  # files `finish` may write; a fresh start removes them

    def identity(self) -> dict[str, Any]:
        """Settings that tie a folder's answers to this job (the input's hash is added)."""
        ...

    def columns(self) -> Sequence[Column]: ...

    def admit(self, values: Values) -> Admitted[I] | str:
        """An item from a row's values, or why the row is rejected."""
        ...

    def encode_item(self, item: I) -> dict[str, Any]: ...

    def decode_item(self, stored: dict[str, Any]) -> I: ...

    def encode_record(self, record: R) -> dict[str, Any]: ...

    def decode_record(self, stored: dict[str, Any]) -> R: ...

    def is_final(self, record: R) -> bool:
        """False when a record is a failure to be asked again on resume."""
        ...

    def asker(self, log: Log) -> AbstractAsyncContextManager[Asker[I, R]]: ...

    def tables(self) -> Sequence[Table]:
        """The output tables; the first has exactly one row per item (the accounting checks it)."""
        ...

    def timeline_schema(self) -> Any:
        """The timeline table's fixed columns (an Arrow schema), or None for the samples' own."""
        ...

    def rows(self, key: str, item: I, record: R) -> Mapping[str, Sequence[dict[str, Any]]]:
        """The rows one answered item gives each table."""
        ...

    def views(self) -> Sequence[View]:
        """The workbook's sheets, in order (empty: one sheet per table)."""
        ...

    def counters(self, record: R) -> Iterable[str]:
        """The summary counters one record adds to (e.g. its status)."""
        ...

    def failure(self, record: R) -> str | None:
        """Why a record is a failure, for the summary's reasons; None if it is not."""
        ...

    def reject_values(self, values: Values) -> Values:
        """A rejected row's values as the rejects file may show them."""
        ...

    def finish(self, written: Mapping[str, Path], aside: Any) -> dict[str, Any]:
        """Extra outputs from the written tables (`aside(name)` gives a path to publish)."""
        ...

    def summary(self, tally: Tally) -> dict[str, Any]:
        """The run's summary, in the job's words."""
        ...

    def keeps_progress(self, summary: Mapping[str, Any]) -> bool:
        """True when a finished run's store must stay, for a rerun to ask its failures again.

        Otherwise the engine deletes it: the store holds the whole input.
        """
        ...

    def earlier(self) -> Iterable[Earlier]:
        """The latest answer of every item an earlier run knows; read once per night.

        Only called when the run has a `max_age`.
        """
        ...

    def run_log(self, summary: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        """One row for the dataset's run log, and the log's schema."""
        ...

    def after_publish(self, published: Mapping[str, Path], run_log: Path) -> None:
        """Work after a dataset night is published (loading sinks, say): table -> its file."""
        ...
