"""Checkpoints written atomically, and the newest one that loads.

Lightning writes a checkpoint through its ``CheckpointIO``; :class:`AtomicCheckpointIO` writes it to a
temporary sibling, syncs and renames it into place, so a kill or a full disk never leaves a partial
file under a checkpoint's name, and a failed write ends the run with one line naming the path while
the previous checkpoint stays intact. :func:`newest_checkpoint` is how a run resumes: the newest
checkpoint of a folder that is whole, the others reported with the reason.

A checkpoint is a file (a torch archive) or, from a sharded run, a folder: each rank's shard in
``torch.distributed.checkpoint``'s format (``.metadata`` and ``*.distcp``) and Lightning's ``meta.pt``
with everything but the tensors (steps, loops, callbacks' states).
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from intern_data.io import atomic_path

__all__ = [
    "SHARDED_META",
    "AtomicCheckpointIO",
    "CheckpointWriteError",
    "checkpoint_meta",
    "checkpoint_problem",
    "newest_checkpoint",
]

log = logging.getLogger(__name__)

SHARDED_META = "meta.pt"
"""The file of a sharded checkpoint folder holding what is not a tensor (Lightning's name)."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (a full disk...); the message names the path."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary sibling, then ``os.replace`` onto the checkpoint's name."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as file:
                torch.save(checkpoint, file)
        except (OSError, RuntimeError) as err:
            # torch's archive writer reports a failed write (a full disk) as a RuntimeError over the OSError
            cause = err if isinstance(err, OSError) else err.__context__
            if not isinstance(cause, OSError):
                raise
            raise CheckpointWriteError(
                f"cannot write checkpoint {path}: {cause.strerror or cause}; "
                "the previous checkpoints are intact"
            ) from err


def checkpoint_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a checkpoint that loads (empty, truncated, not a torch archive, a sharded folder
    without its metadata), or None. Reads the archive's directory only, not the tensors."""
    path = Path(path)
    if path.is_dir():
        missing = [name for name in (".metadata", SHARDED_META) if not (path / name).is_file()]
        if missing:
            return f"a sharded checkpoint folder without {' and '.join(missing)}"
        return _archive_problem(path / SHARDED_META)
    if not path.is_file():
        return "not a file"
    return _archive_problem(path)


def _archive_problem(path: Path) -> str | None:
    if path.stat().st_size == 0:
        return "empty"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        return f"not a whole torch archive ({err})"
    if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
        return "not a torch checkpoint (no data.pkl)"
    return None


def checkpoint_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's entries that are not tensors' (``global_step``, ``epoch``...), file or sharded folder;
    a file is memory-mapped, so its tensors are not read."""
    path = Path(path)
    if path.is_dir():
        return torch.load(path / SHARDED_META, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def newest_checkpoint(
    folder: str | os.PathLike[str], report: Callable[[str], None] = log.warning
) -> Path | None:
    """The most recently written ``*.ckpt`` (file or sharded folder) of ``folder`` that loads; each newer
    one that does not is reported (``report``) with the reason. None when the folder holds none."""
    candidates = sorted(Path(folder).glob("*.ckpt"), key=_written_at, reverse=True)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        report(f"skipped checkpoint {path}: {problem}")
    return None


def _written_at(path: Path) -> int:
    """When ``path`` was written (a sharded folder: its ``meta.pt``, written last); 0, the oldest, for a
    folder without it, which :func:`newest_checkpoint` then reports as broken."""
    try:
        return (path / SHARDED_META if path.is_dir() else path).stat().st_mtime_ns
    except OSError:
        return 0
