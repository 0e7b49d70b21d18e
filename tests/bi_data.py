"""Datasets made once for the BI tests: three plain nights, and six nights as BI meets them.

The six nights (`six_nights`) hold what a year of nights brings: errors on some nights
and not others, a `--max-age` night, a `--fresh` rerun of a night, and a kept column
added through `migrate`, loaded into a DuckDB sink as they go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.sandbox.server import Fault, SandboxConfig, SandboxThread
from tests.conftest import API_KEY, CliResult, base_args, customers, run_cli, write_csv

DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")
PEOPLE = 40
DOCS = Path(__file__).resolve().parents[1] / "docs" / "schema.md"

SIX = ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06")
KEPT = ("고객번호", "지점")  # 지점 joins on the fifth night, through migrate
TABLES = ("reconciled", "accounts", "changes", "timeline", "runs")


def three_nights(sandbox: SandboxThread, folder: Path) -> Path:
    """ROOT with three finished nights; each night's answers differ (the sandbox's salt)."""
    root = folder / "recon"
    path = write_csv(folder / "in.csv", customers(PEOPLE))
    for day in DAYS:
        sandbox.sandbox.reset(SandboxConfig(api_key=API_KEY, answer_salt=day))
        args = base_args(sandbox, path, root)
        at = args.index("--out")
        args[at : at + 2] = ["--dataset", str(root), "--run-date", day]
        result = run_cli(args)
        assert result.exit_code == 0, result.stderr
    sandbox.sandbox.reset(SandboxConfig(api_key=API_KEY))
    return root


@dataclass
class Nights:
    """A six-night dataset, its DuckDB sink, and what its making printed."""

    root: Path
    sink: Path
    refused: CliResult  # the fifth night, first tried with a kept column more
    migrated: CliResult
    in_error: dict[str, set[str]] = field(default_factory=dict)  # night -> CIs in error

    def summary(self, day: str) -> dict[str, Any]:
        """The night's summary.json: its current run's."""
        path = self.root / "summary" / f"run_date={day}" / "summary.json"
        return dict(json.loads(path.read_text(encoding="utf-8")))


def six_nights(sandbox: SandboxThread, folder: Path) -> Nights:
    """Six nights of 40 customers (some come and go) through the real CLI and the sandbox."""
    root, sink = folder / "recon", folder / "bi.duckdb"
    people = customers(PEOPLE + 4)
    rows = [(ci, name, f"{i:06d}", f"지점{i % 3}") for i, (ci, name) in enumerate(people)]
    header = ("ci", "kor_name", *KEPT)
    inputs = [
        write_csv(folder / "in-a.csv", rows[:PEOPLE], header),
        write_csv(folder / "in-b.csv", rows[:36] + rows[PEOPLE:], header),
    ]
    cis = [ci for ci, _ in people]
    failing = {SIX[1]: cis[0:5], SIX[3]: cis[5:9], "rerun": cis[9:11], SIX[4]: cis[0:3]}
    made: dict[str, set[str]] = {}

    def night(
        day: str, path: Path, kept: str, *extra: str, faults: Sequence[str] = ()
    ) -> CliResult:
        # Each night (and the rerun) answers otherwise; `faults` end in error (one attempt).
        fail = Fault("http500", first_attempts=99, cis=frozenset(faults))
        salt = day + "".join(extra)
        sandbox.sandbox.reset(
            SandboxConfig(api_key=API_KEY, answer_salt=salt, faults=(fail,) if faults else ())
        )
        args = base_args(sandbox, path, root)
        at = args.index("--out")
        args[at : at + 2] = ["--dataset", str(root), "--run-date", day]
        args += ["--keep-columns", kept, "--attempts", "1", "--max-error-rate", "1"]
        args += ["--sink", f"duckdb:///{sink}", *extra]
        result = run_cli(args)
        if result.exit_code == 0:
            made[day] = set(faults)
        return result

    one, both = KEPT[0], ",".join(KEPT)
    assert night(SIX[0], inputs[0], one).exit_code == 0
    assert night(SIX[1], inputs[1], one, faults=failing[SIX[1]]).exit_code == 0
    assert night(SIX[2], inputs[1], one, "--max-age", "3").exit_code == 0
    assert night(SIX[3], inputs[0], one, faults=failing[SIX[3]]).exit_code == 0
    rerun = night(SIX[3], inputs[0], one, "--fresh", faults=failing["rerun"])
    assert rerun.exit_code == 0, rerun.stderr
    refused = night(SIX[4], inputs[0], both)
    assert refused.exit_code == 2, refused.stderr
    migrated = run_cli(["migrate", str(root), "--keep-columns", both])
    assert migrated.exit_code == 0, migrated.stderr
    assert night(SIX[4], inputs[1], both, faults=failing[SIX[4]]).exit_code == 0
    assert night(SIX[5], inputs[0], both).exit_code == 0
    sandbox.sandbox.reset(SandboxConfig(api_key=API_KEY))
    return Nights(root, sink, refused, migrated, made)


def csv_folder(sandbox: SandboxThread, folder: Path) -> Path:
    out = folder / "out"
    path = write_csv(folder / "in.csv", customers(PEOPLE))
    result = run_cli([*base_args(sandbox, path, out), "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    return out


def recipes() -> dict[str, str]:
    """docs/schema.md's code blocks that start with `# recipe: NAME` (or `-- recipe: NAME`)."""
    text = DOCS.read_text(encoding="utf-8")
    found = {}
    for block in re.findall(r"```(?:python|sql)\n(.*?)```", text, flags=re.DOTALL):
        head = re.match(r"(?:#|--) recipe: (\S+)\n", block)
        if head:
            found[head.group(1)] = block
    return found
