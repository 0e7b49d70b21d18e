"""What a job tells the engine, and all the engine knows of it.

The engine (`batch.run.lifecycle.run_batch`) runs the life cycle: lock the folder, claim
it for this input, ingest the rows, ask about every open item, export the tables,
check the accounting, publish. A job supplies the rest:

* which input columns it needs (`columns`), and whether a row is an item (`admit`);
* how to ask about an item (`asker`), giving its answer and what it counts as (`Answer`);
* its tables (`tables`) and the rows one answered item gives them (`rows`);
* what ties a folder to its answers (`identity`), and its words for the summary.

The engine only keeps and hands back what the job gave it: an item and its answer cross
the contract as the store keeps them (JSON-ready dicts), and the job turns them into its
own types with a `Codec`. One customer costs three calls into the job: `admit`, `ask`
and `rows` (an answer the engine did not see given, carried or left by an older version,
adds `judge`). `BaseJob` gives the rest defaults that most jobs keep.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from batch.log import Log

T = TypeVar("T")
RowValues = Mapping[str, str | None]  # an input row's values by column name
Stored = dict[str, Any]  # an item or an answer as the store keeps it: JSON-ready
TableRows = Mapping[str, Sequence[dict[str, Any]]]  # table name -> its rows


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
class Admitted:
    """A row the job will ask about, as the store keeps it; `key` makes it distinct (a
    repeat is a reject).

    `question` digests what else the asking depends on (a name, say): an earlier answer
    to another question is not carried.
    """

    key: str
    item: Stored
    question: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an answer counts as: final or asked again on resume, its summary counters, and
    why it failed (None when it did not)."""

    final: bool = True
    counters: tuple[str, ...] = ()
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """One item's answer as the store keeps it, judged once, when it was given."""

    result: Stored
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Earlier:
    """An item's latest earlier answer, as the store keeps it, and the run date that asked."""

    key: str
    record: Stored
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


class Codec(Protocol[T]):
    """How the store keeps one of a job's types: a JSON-ready dict, and back."""

    def encode(self, value: T) -> Stored: ...

    def decode(self, stored: Mapping[str, Any]) -> T: ...


class Asker(Protocol):
    """Asks about one item at a time; opened once per run (`BaseAsker` gives defaults)."""

    async def ask(self, item: Stored) -> Answer:
        """The answer about one item, as the store will keep it, and its verdict."""
        ...

    def figures(self) -> dict[str, Any]: ...

    def waiting(self) -> bool:
        """True while every ask in flight only waits for the server (it is down)."""
        ...

    def suspects(self) -> set[object]:
        """Keys of items whose answer may be another item's, to be asked again."""
        ...


class BaseAsker:
    """An asker's optional parts: no figures, never only waiting, no suspects."""

    def figures(self) -> dict[str, Any]:
        return {}

    def waiting(self) -> bool:
        # Only an asker that can tell the server is down lets a stop skip the drain.
        return False

    def suspects(self) -> set[object]:
        return set()


class Job(Protocol):
    """A batch job as the engine runs it (`BaseJob` gives the optional parts defaults)."""

    unit: str  # what one item is called on a progress bar
    key_name: str  # what makes an item distinct, as rejects name it
    extra_outputs: tuple[str, ...]  # files `finish` may write; a fresh start removes them

    def identity(self) -> dict[str, Any]:
        """Settings that tie a folder's answers to this job (the input's hash is added)."""
        ...

    def columns(self) -> Sequence[Column]: ...

    def admit(self, values: RowValues) -> Admitted | str:
        """An item from a row's values, or why the row is rejected."""
        ...

    def asker(self, log: Log) -> AbstractAsyncContextManager[Asker]: ...

    def tables(self) -> Sequence[Table]:
        """The output tables; the first has exactly one row per item (the accounting checks it)."""
        ...

    def timeline_schema(self) -> Any:
        """The timeline table's fixed columns (an Arrow schema), or None for the samples' own."""
        ...

    def rows(self, key: str, item: Stored, result: Stored) -> TableRows:
        """The rows one answered item gives each table."""
        ...

    def views(self) -> Sequence[View]:
        """The workbook's sheets, in order (empty: one sheet per table)."""
        ...

    def judge(self, result: Stored) -> Verdict:
        """The verdict on an answer the engine did not see given (carried, or older)."""
        ...

    def summary(self, tally: Tally) -> dict[str, Any]:
        """The run's summary, in the job's words."""
        ...

    def reject_values(self, values: RowValues) -> RowValues:
        """A rejected row's values as the rejects file may show them."""
        ...

    def finish(self, written: Mapping[str, Path], aside: Any) -> dict[str, Any]:
        """Extra outputs from the written tables (`aside(name)` gives a path to publish)."""
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


class BaseJob:
    """Defaults for the parts of `Job` most jobs do not need; a job overrides what it uses."""

    extra_outputs: tuple[str, ...] = ()

    def identity(self) -> dict[str, Any]:
        return {}

    def timeline_schema(self) -> Any:
        return None  # the samples' own columns

    def views(self) -> Sequence[View]:
        return ()

    def reject_values(self, values: RowValues) -> RowValues:
        return values

    def finish(self, written: Mapping[str, Path], aside: Any) -> dict[str, Any]:
        del written, aside
        return {}

    def summary(self, tally: Tally) -> dict[str, Any]:
        """The tally's plain figures."""
        return {
            "state": tally.state,
            "reason": tally.reason,
            "rows": tally.rows,
            "rejected": tally.rejected,
            "items": tally.items,
            "unanswered": tally.unanswered,
            "counters": dict(tally.counters),
            "accounting_ok": tally.accounting_ok,
        }

    def keeps_progress(self, summary: Mapping[str, Any]) -> bool:
        del summary
        return False

    def earlier(self) -> Iterable[Earlier]:
        return ()

    def run_log(self, summary: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        """The run's state and item count."""
        import pyarrow as pa  # noqa: PLC0415  (the engine's import stays light)

        schema = pa.schema([("state", pa.string()), ("items", pa.int64())])
        return {"state": summary.get("state"), "items": summary.get("items")}, schema

    def after_publish(self, published: Mapping[str, Path], run_log: Path) -> None:
        del published, run_log
