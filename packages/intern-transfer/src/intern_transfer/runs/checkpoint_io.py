"""Checkpoints written atomically, and the newest one that loads.

Lightning writes a checkpoint through its ``CheckpointIO``; :class:`AtomicCheckpointIO` writes it to a
temporary sibling, syncs and renames it into place, so a kill or a full disk never leaves a partial
file under a checkpoint's name, and a failed write ends the run with one line naming the path while
the previous checkpoint stays intact. :func:`newest_checkpoint` is how a run resumes: the newest
checkpoint of a folder whose file is a whole torch archive, the others reported with the reason.
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

__all__ = ["AtomicCheckpointIO", "CheckpointWriteError", "checkpoint_problem", "newest_checkpoint"]

log = logging.getLogger(__name__)


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
    """Why ``path`` is not a checkpoint ``torch.load`` can read (empty, truncated, not a torch archive),
    or None. Reads the archive's directory only, not the tensors."""
    path = Path(path)
    if not path.is_file():
        return "not a file"
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


def newest_checkpoint(
    folder: str | os.PathLike[str], report: Callable[[str], None] = log.warning
) -> Path | None:
    """The most recently written ``*.ckpt`` of ``folder`` that loads; each newer one that does not is
    reported (``report``) with the reason. None when the folder holds none."""
    candidates = sorted(Path(folder).glob("*.ckpt"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        report(f"skipped checkpoint {path}: {problem}")
    return None
