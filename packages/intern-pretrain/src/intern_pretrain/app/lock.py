"""One run per run folder: a second process on the same folder fails at once instead of interleaving its
checkpoints and logs with the first's.

The lock is an ``fcntl`` lock on ``<run folder>/.lock``, which holds the owner's pid for the message. The
kernel releases it when its process ends, however it ends, so a folder left by a killed run is taken
over by the next one without a stale-lock check.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RunFolderBusy", "run_folder_lock"]

LOCK_NAME = ".lock"


class RunFolderBusy(RuntimeError):
    """Another process runs in this run folder; the message names the folder and its pid."""


@contextlib.contextmanager
def run_folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs.

    Raises:
        RunFolderBusy: another live process holds it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise RunFolderBusy(
                f"run folder {folder} is in use by process {owner}; wait for it or choose another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
