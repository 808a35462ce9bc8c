"""The classification linear probe of GV-B (paper 9.3) on cached features of a frozen backbone.

Features of the whole training and test splits are extracted once (cached on disk); the data regime
(``10pct``, ``4shot``, ...) picks training rows through intern-data's split manifest, which is drawn
once, saved beside the shards and reused. Selection happens on a validation part carved from those
training rows (never on test); the chosen head is refitted and scored once on test, together with
FPR at recall 0.9 / 0.95 / 0.99 (one-vs-rest, Table 33).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from intern_bench.features import select_rows, split_features
from intern_bench.metrics import FPRAtRecall
from intern_data.regimes import regime_manifest
from intern_data.splits import SplitManifest
from intern_transfer.probe import FeatureCache, Features, LBFGSSearch, SGDGrid, linear_probe, log_grid


@dataclass
class ProbeOutcome:
    """A probe's numbers (``metrics``, in percent for scores), the regime's manifest and the test features."""

    metrics: dict[str, float]
    manifest: SplitManifest
    details: dict[str, Any]
    test_features: Features


def sgd_grid(cfg: Mapping[str, Any]) -> SGDGrid:
    """The SGD grid of ``protocol.sgd``: explicit value lists or log ranges ``[low, high, points/decade]``."""

    def values(key: str) -> tuple[float, ...]:
        spec = cfg[key]
        if isinstance(spec, Mapping):
            return log_grid(spec["low"], spec["high"], spec["per_decade"])
        return tuple(float(v) for v in spec)

    return SGDGrid(
        lrs=values("lrs"),
        weight_decays=values("weight_decays"),
        momenta=tuple(float(m) for m in cfg["momenta"]),
        iterations=int(cfg["iterations"]),
        batch_size=int(cfg["batch_size"]),
        nesterov=bool(cfg.get("nesterov", True)),
    )


def lbfgs_search(cfg: Mapping[str, Any]) -> LBFGSSearch:
    """The L-BFGS search of ``protocol.lbfgs``: C in [``c_min``, ``c_max``], first ``coarse_step`` decades
    apart, refined to ``steps_per_decade``, at most ``max_iter`` iterations a fit, features scaled to
    unit variance if ``standardize`` (the last three optional: the library's defaults)."""
    optional = {"coarse_step": float, "steps_per_decade": int, "standardize": bool}
    return LBFGSSearch(
        c_min=float(cfg["c_min"]),
        c_max=float(cfg["c_max"]),
        max_iter=int(cfg["max_iter"]),
        **{key: kind(cfg[key]) for key, kind in optional.items() if key in cfg},
    )


def run_linear_probe(
    model: torch.nn.Module,
    preprocess: Callable[[Tensor], Tensor],
    model_id: str,
    preprocess_id: Any,
    *,
    train: tuple[Path, str],
    test: tuple[Path, str],
    rule: str,
    num_classes: int,
    metric: str,
    protocol: Mapping[str, Any],
    seed: int = 0,
    cache: FeatureCache | None = None,
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> ProbeOutcome:
    """Probe ``model`` on a classification task; ``train``/``test`` are (shard folder, split) pairs.

    Features are extracted on the model's device under ``torch.autocast`` with ``autocast_dtype``
    (None: float32); the heads train in float32."""
    extract = dict(cache=cache, batch_size=batch_size, autocast_dtype=autocast_dtype, progress=progress)
    train_all = split_features(model, preprocess, model_id, preprocess_id, *train, **extract)
    test_feats = split_features(model, preprocess, model_id, preprocess_id, *test, **extract)
    manifest = regime_manifest(train[0], train[1], rule, seed)
    fit = select_rows(train_all, manifest.keys)
    if len(fit.labels) == 0 or int(torch.bincount(fit.labels).max()) < 2:
        raise ValueError(
            f"split={rule}: {len(fit.keys)} training samples and no class with two, so no validation "
            "part to select the head on; choose a larger regime"
        )
    result = linear_probe(
        fit.features,
        fit.labels,
        test_feats.features,
        test_feats.labels,
        strategy=protocol.get("strategy", "both"),
        val_fraction=float(protocol.get("val_fraction", 0.2)),
        seed=seed,
        metric=metric,
        num_classes=num_classes,
        sgd_grid=sgd_grid(protocol["sgd"]) if "sgd" in protocol else None,
        lbfgs_search=lbfgs_search(protocol["lbfgs"]) if "lbfgs" in protocol else None,
    )
    fpr = FPRAtRecall(num_classes)
    fpr.update(result.test_logits, test_feats.labels)
    metrics = {metric: 100.0 * result.test_score, "val_" + metric: 100.0 * result.val_score}
    metrics.update({name: float(value) for name, value in fpr.compute().items()})
    details = {
        "probe": result.summary(),
        "train_samples": len(fit.keys),
        "test_samples": len(test_feats.keys),
    }
    return ProbeOutcome(metrics, manifest, details, test_feats)
