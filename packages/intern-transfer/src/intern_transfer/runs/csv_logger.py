"""Lightning's CSV logger, keeping a resumed run's history.

``lightning.pytorch.loggers.CSVLogger`` deletes ``metrics.csv`` when its writer is created again, so a
run resumed into its own folder loses every step before the resume point. :class:`ResumableCSVLogger`
takes TensorBoard's ``purge_step``: the rows of the earlier file at steps below it are kept (written
back at once), those at or after it dropped, since the resumed run logs them again.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

__all__ = ["ResumableCSVLogger"]


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``purge_step`` keeps the earlier rows of the run's ``metrics.csv`` below it.

    Args:
        *args, **kwargs: as ``CSVLogger``.
        purge_step: the step the run resumes at (the checkpoint's ``global_step``); None: a new log, as
            ``CSVLogger`` writes it.
    """

    def __init__(self, *args: Any, purge_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        self._history: list[dict[str, str]] = []
        if purge_step is not None and path.is_file():
            with path.open(newline="") as file:
                self._history = [row for row in csv.DictReader(file) if float(row["step"]) < purge_step]

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        created = self._experiment is None
        writer = super().experiment  # removes an existing metrics.csv
        if created and self._history:
            keys = sorted({key for row in self._history for key, value in row.items() if value != ""})
            with open(writer.metrics_file_path, "w", newline="") as file:
                out = csv.DictWriter(file, fieldnames=keys, extrasaction="ignore")
                out.writeheader()
                out.writerows(self._history)
            writer.metrics_keys = keys
        return writer
