"""The ``python -m intern_pretrain`` app's task: run the composed stage, report failures in one line."""

from __future__ import annotations

from hydra.errors import InstantiationException
from omegaconf import DictConfig

from intern_app import AppError, describe
from intern_arch import CheckpointError
from intern_arch.search import SearchSpaceError
from intern_data.progress import set_progress
from intern_data.readers import ReaderError
from intern_data.shards import ShardWriteError, SkipRateError
from intern_data.sources import DataConfigError
from intern_pretrain.app.evaluate import EvaluationError
from intern_pretrain.app.lock import RunFolderBusy
from intern_pretrain.app.run import run_stage
from intern_pretrain.app.search import run_search_stage
from intern_pretrain.app.stages import StageUnavailable
from intern_pretrain.core import StageConfigError
from intern_transfer.runs import CheckpointWriteError

__all__ = ["main"]

FAILURES = (
    StageUnavailable,
    StageConfigError,
    EvaluationError,
    RunFolderBusy,
    CheckpointError,
    CheckpointWriteError,
    DataConfigError,
    ReaderError,
    ShardWriteError,
    SkipRateError,
    SearchSpaceError,
)


def main(cfg: DictConfig) -> None:
    """Run an upstream stage (its phases in order), export its hand-over and benchmark it."""
    print(describe(cfg))
    print(f"stage {cfg.stage.name} (paper {cfg.stage.paper_section}): {cfg.stage.description}")
    if not cfg.progress:
        set_progress(False)
    try:
        if cfg.stage.get("kind") == "search":
            run_search_stage(cfg)
        else:
            run_stage(cfg)
    except FAILURES as err:
        raise AppError(str(err)) from err
    except InstantiationException as err:  # a stage's data or module refused its settings
        if isinstance(err.__cause__, FAILURES):
            raise AppError(str(err.__cause__)) from err
        raise
