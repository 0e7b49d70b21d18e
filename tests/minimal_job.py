"""The smallest job the engine runs: names in, their lengths out (the contract's floor)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import pyarrow as pa

from batch import (
    Admitted,
    Answer,
    BaseAsker,
    BaseJob,
    Column,
    RowValues,
    Stored,
    Table,
    TableRows,
    Verdict,
)

MEASURED = Verdict(counters=("measured",))  # every name has a length: no failure, all final


class LengthAsker(BaseAsker):
    """Answers at once: a name's length."""

    async def ask(self, item: Stored) -> Answer:
        return Answer({"length": len(item["name"])}, MEASURED)


class LengthJob(BaseJob):
    """A `name` column; distinct names; one `lengths` table."""

    unit = "name"
    key_name = "name"

    def columns(self) -> Sequence[Column]:
        return [Column("name", "name_column")]

    def admit(self, values: RowValues) -> Admitted | str:
        name = (values.get("name") or "").strip()
        return Admitted(name, {"name": name}) if name else "no name"

    @contextlib.asynccontextmanager
    async def asker(self, log: object) -> AsyncIterator[LengthAsker]:
        yield LengthAsker()

    def tables(self) -> Sequence[Table]:
        return [Table("lengths", pa.schema([("name", pa.string()), ("length", pa.int64())]))]

    def rows(self, key: str, item: Stored, result: Stored) -> TableRows:
        return {"lengths": [{"name": key, "length": result["length"]}]}

    def judge(self, result: Stored) -> Verdict:
        return MEASURED
