"""`member-recon report PATH` and `member-recon migrate ROOT`: a page to look at, and a move."""

from __future__ import annotations

from pathlib import Path

import click

from jobs.cli.outcome import fail
from jobs.cli.tuning import skip_pandas_probe


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def report(path: Path) -> None:
    """Write PATH/report.html: one offline page about a run folder or a --dataset root."""
    from batch import UsageError  # noqa: PLC0415
    from jobs.report.page import write_report  # noqa: PLC0415  (lazy: charts load only here)

    skip_pandas_probe()
    try:
        page = write_report(path)
    except UsageError as exc:
        fail(str(exc), 2)
    except OSError as exc:  # a read-only folder, a file it may not read
        where = exc.filename or path
        fail(f"report: {where}: {exc.strerror or exc}; the page was not written", 2)
    except Exception as exc:  # a file the run left, damaged in a way no reader foresaw
        fail(f"report: {path} holds a damaged file ({type(exc).__name__}); rerun the night", 70)
    print(f"report: {page} ({page.stat().st_size // 1024} KiB)")


@click.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--keep-columns",
    "keep_columns",
    default=None,
    metavar="A,B",
    help="Give every night exactly these kept columns, in this order (a new one as nulls).",
)
def migrate(root: Path, keep_columns: str | None) -> None:
    """Bring a --dataset ROOT to this version: one folder per table, this dataset schema, and
    with --keep-columns the kept columns a later night asks for.

    Run it while no run writes to ROOT; it may be run again if it was interrupted (each
    night's file is replaced whole).
    """
    from batch import UsageError  # noqa: PLC0415
    from batch.outputs import is_old_layout, migrate_layout  # noqa: PLC0415
    from jobs.dataset.columns import migrate_columns  # noqa: PLC0415
    from jobs.dataset.outputs import SCHEMA_VERSION  # noqa: PLC0415
    from jobs.dataset.upgrade import upgrade  # noqa: PLC0415

    skip_pandas_probe()
    moved = migrate_layout(root) if is_old_layout(root) else []
    upgraded = upgrade(root)
    if keep_columns is not None:
        keep = [c.strip() for c in keep_columns.split(",") if c.strip()]
        try:
            upgraded += migrate_columns(root, keep)
        except UsageError as exc:
            fail(str(exc), 2)
    for line in (*moved, *upgraded):
        print(f"  {line}")
    if not moved and not upgraded:
        print(f"{root} is already in the current layout and schema; nothing to do")
        return
    print(
        f"{root}: {len(moved)} moves, {len(upgraded)} partitions rewritten; the dataset has "
        f"one folder per table, in schema {SCHEMA_VERSION}"
    )
