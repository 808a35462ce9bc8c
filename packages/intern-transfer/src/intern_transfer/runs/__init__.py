"""What makes a Lightning run survive faults (paper sec. 5.2.2): checkpoints written atomically and
chosen by whether they load, random-number states in every checkpoint, a CSV log that keeps its
history across a resume. Every app that trains uses them through its configs."""

from intern_transfer.runs.checkpoint_io import (
    AtomicCheckpointIO,
    CheckpointWriteError,
    checkpoint_meta,
    checkpoint_problem,
    newest_checkpoint,
)
from intern_transfer.runs.csv_logger import ResumableCSVLogger
from intern_transfer.runs.exact_resume import ExactResume
from intern_transfer.runs.hyperparameters import save_plain_hyperparameters

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointWriteError",
    "ExactResume",
    "ResumableCSVLogger",
    "checkpoint_meta",
    "checkpoint_problem",
    "newest_checkpoint",
    "save_plain_hyperparameters",
]
