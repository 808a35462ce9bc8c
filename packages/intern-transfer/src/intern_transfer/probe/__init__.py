"""Classification linear probe on cached features (GV-B, paper section 9.3).

- :mod:`.features`: frozen-backbone feature extraction and the on-disk feature cache.
- :mod:`.sgd_grid`: strategy 1, a grid of SGD-Nesterov heads trained together in one pass.
- :mod:`.lbfgs`: strategy 2 (CLIP's), L-BFGS logistic regression with a search over its L2 strength.
- :mod:`.select`: :func:`linear_probe`: validation split from training data, selection, refit, test.
"""

from intern_transfer.probe.features import (
    CacheKey,
    FeatureCache,
    FeatureCacheError,
    Features,
    cached_features,
    extract_features,
    model_fingerprint,
)
from intern_transfer.probe.heads import LinearHeads, Standardizer
from intern_transfer.probe.lbfgs import (
    LBFGSFit,
    LBFGSSearch,
    LBFGSSearchResult,
    fit_logistic_lbfgs,
    l2_strength,
    search_regularisation,
)
from intern_transfer.probe.metrics import METRICS, score
from intern_transfer.probe.select import ProbeResult, StrategyResult, linear_probe, stratified_split
from intern_transfer.probe.sgd_grid import (
    SGDGrid,
    SGDGridResult,
    SGDSetting,
    log_grid,
    minibatch_indices,
    train_sgd_grid,
)

__all__ = [
    "METRICS",
    "CacheKey",
    "FeatureCache",
    "FeatureCacheError",
    "Features",
    "LBFGSFit",
    "LBFGSSearch",
    "LBFGSSearchResult",
    "LinearHeads",
    "ProbeResult",
    "SGDGrid",
    "SGDGridResult",
    "SGDSetting",
    "Standardizer",
    "StrategyResult",
    "cached_features",
    "extract_features",
    "fit_logistic_lbfgs",
    "l2_strength",
    "linear_probe",
    "log_grid",
    "minibatch_indices",
    "model_fingerprint",
    "score",
    "search_regularisation",
    "stratified_split",
    "train_sgd_grid",
]
