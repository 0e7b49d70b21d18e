"""The run's folder: safe to write in, and what an earlier run left in it.

A folder another user can write to is an attack surface: a planted symlink named like
the lock truncates whatever it points at, and a planted store receives every key. So
the folder must be ours and closed to others, and the files the engine opens there
are opened without following links and checked to be ours.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batch.errors import UsageError


def check_folder(folder: Path) -> None:
    """Refuse a folder owned by another user, or one group or others can write to."""
    info = folder.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{folder} is not a folder (a link?)", setting="out_dir")
    if info.st_uid != os.geteuid():
        raise UsageError(f"{folder} belongs to another user (uid {info.st_uid})", setting="out_dir")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UsageError(
            f"{folder} can be written by others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run chmod go-w {folder}",
            setting="out_dir",
        )


def check_tree(top: Path, path: Path) -> None:
    """check_folder for every folder there is from `top` down to `path`: a link anywhere
    below a dataset root (`ROOT/.work`, `ROOT/reconciled/run_date=D`) would carry the
    night's files, or a chmod, outside it."""
    chain = [top]
    if path != top and path.is_relative_to(top):
        for part in path.relative_to(top).parts:
            chain.append(chain[-1] / part)
    for folder in chain:
        if os.path.lexists(folder):
            check_folder(folder)


def open_private(path: Path, flags: int) -> int:
    """Open or create a file of ours: never through a link, never someone else's file."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ELOOP:  # a read-only mount is no planted link
                raise
            raise UsageError(f"{path} is a link, not a file of ours", setting="out_dir") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise UsageError(f"{path} is not a file of ours; remove it", setting="out_dir")
    if info.st_mode & 0o077:
        os.fchmod(fd, 0o600)
    return fd


def ensure_private(path: Path) -> None:
    """Create `path` if need be, or check the one there is ours (for files others open)."""
    os.close(open_private(path, os.O_RDONLY))


def check_existing_private(path: Path) -> None:
    """If `path` exists, it must be a file of ours (SQLite opens its side files itself)."""
    if os.path.lexists(path):
        ensure_private(path)


STORE_NAME = ".progress.sqlite"
FINISHED_NAME = ".finished.json"  # left where the store was, once a run has nothing more to ask


def finished_before(
    out_dir: Path, identity: dict[str, Any]
) -> tuple[dict[str, Any], tuple[Path, ...]] | None:
    """The result of an earlier run of the same input and job that finished in this folder."""
    try:
        marker = json.loads((out_dir / FINISHED_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if marker.get("identity") != identity_digest(identity) or (out_dir / STORE_NAME).exists():
        return None
    outputs = tuple(Path(p) for p in marker.get("outputs", ()))
    if not all(p.exists() for p in outputs):
        return None  # its outputs were removed since: the night must be made again
    return dict(marker.get("summary", {})), outputs


def mark_finished(
    out_dir: Path, identity: dict[str, Any], summary: dict[str, Any], outputs: Iterable[Path]
) -> None:
    """Leave, where the store was, what a rerun of the same input needs to say it is done."""
    marker = {
        "identity": identity_digest(identity),
        "summary": summary,
        "outputs": [str(p.resolve()) for p in outputs],
    }
    fd = open_private(out_dir / FINISHED_NAME, os.O_WRONLY | os.O_TRUNC)  # never via a link
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(json.dumps(marker, ensure_ascii=False))


def forget(out_dir: Path, outputs: Iterable[str]) -> None:
    """A fresh start: drop the store, the finished mark and the named outputs."""
    remove_store(out_dir / STORE_NAME)
    (out_dir / FINISHED_NAME).unlink(missing_ok=True)
    for name in outputs:
        (out_dir / name).unlink(missing_ok=True)


def remove_store(path: Path) -> None:
    """Delete a store and SQLite's side files (write-ahead log, shared memory)."""
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        (path.parent / name).unlink(missing_ok=True)


def identity_digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
