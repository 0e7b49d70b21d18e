"""`member-recon report PATH` and `member-recon migrate ROOT`: a page to look at, and a move."""

from __future__ import annotations

from pathlib import Path

import click

from jobs.cli_report import fail


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def report(path: Path) -> None:
    """Write PATH/report.html: one offline page about a run folder or a --dataset root."""
    from batch.errors import UsageError  # noqa: PLC0415
    from jobs.report import write_report  # noqa: PLC0415  (lazy: charts load only here)

    try:
        page = write_report(path)
    except UsageError as exc:
        fail(str(exc), 2)
    print(f"report: {page} ({page.stat().st_size // 1024} KiB)")


@click.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
def migrate(root: Path) -> None:
    """Move a --dataset ROOT written in the earlier layout into one folder per table.

    Run it while no run writes to ROOT; it may be run again if it was interrupted.
    """
    from batch import dataset  # noqa: PLC0415

    if not dataset.is_old_layout(root):
        print(f"{root} is already in the current layout; nothing to do")
        return
    moved = dataset.migrate(root)
    for line in moved:
        print(f"  {line}")
    print(f"{root}: {len(moved)} moves; the dataset now has one folder per table")
