"""One run per output folder, with a lock the kernel drops when its holder dies."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Self

from batch.errors import DirLocked, UsageError
from batch.store.folder import FINISHED_NAME, open_private


class FolderLock:
    """An exclusive `flock` on DIR/.lock; a killed holder cannot leave it stale."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = open_private(self.path, os.O_RDWR)
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
            folder = self.path.parent
            finished = (folder / FINISHED_NAME).exists() or (folder / "summary.json").exists()
            raise UsageError(
                f"{folder} is on a read-only file system: no run can write there"
                + (
                    "; the night in it is finished: `member-recon report` shows it"
                    if finished
                    else ""
                ),
                setting="out_dir",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DirLocked(
                f"{self.path.parent} is in use by another run (pid {holder})",
                setting="out_dir_busy",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
