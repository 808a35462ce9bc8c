"""What the stages share: the stage module contract, gathering across ranks, the learnable temperature,
the optimiser that steps two optimisers as one, and the callbacks (loss guard, downstream probe)."""

from intern_pretrain.core.gather import (
    gather_no_grad,
    gather_with_grad,
    is_distributed,
    rank_offset_labels,
    world_info,
)
from intern_pretrain.core.optim import MixedOptimizer, scheduled
from intern_pretrain.core.stage import StageConfigError, StageData, StageModule
from intern_pretrain.core.temperature import LogitScale

__all__ = [
    "LogitScale",
    "MixedOptimizer",
    "StageConfigError",
    "StageData",
    "StageModule",
    "gather_no_grad",
    "gather_with_grad",
    "is_distributed",
    "rank_offset_labels",
    "scheduled",
    "world_info",
]
