"""After the search: the top-k architectures retrained longer, then the best one scaled to a family
(INTERN paper 4.3-4.4: the top-5 trained fully, the winner scaled in depth and width for B4/B7/B15 by
convergence speed within a short budget).

For each compute target (a multiple of the winner's MACs) every depth coefficient gets the width
coefficient that reaches the target (:func:`intern_arch.search.fit_width`); each candidate trains the
short scaling budget and the one with the lowest mean training loss (fastest convergence) is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern_arch import MetaNetCfg
from intern_arch.models.metanet import metanet_cfg_from_dict
from intern_arch.search import fit_width
from intern_arch.search.install import model_config
from intern_data.io import atomic_write_text
from intern_pretrain.search.evaluator import ProxyEvaluator
from intern_pretrain.search.loop import SearchSettings

__all__ = ["ScalingSettings", "retrain_top_k", "scale_family", "top_k", "write_family"]


def top_k(records: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` distinct architectures with the highest proxy reward."""
    best: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["arch"] not in best or record["reward"] > best[record["arch"]]["reward"]:
            best[record["arch"]] = record
    return sorted(best.values(), key=lambda r: -r["reward"])[:k]


def retrain_top_k(
    records: Sequence[dict[str, Any]], k: int, evaluator: ProxyEvaluator, settings: SearchSettings
) -> list[dict[str, Any]]:
    """The top ``k`` retrained with ``evaluator``'s (longer) settings, best reward first."""
    chosen = top_k(records, k)
    cfgs = [metanet_cfg_from_dict(r["stages"]) for r in chosen]
    out = [dict(r) for r in chosen]
    for i, result in evaluator.evaluate(cfgs, [settings.seed] * len(cfgs)):
        out[i].update(
            retrained_accuracy=result.accuracy,
            retrained_reward=settings.reward(result.accuracy, out[i]["macs"]),
        )
    return sorted(out, key=lambda r: -r["retrained_reward"])


@dataclass(frozen=True)
class ScalingSettings:
    """The scaling search: MACs multiples of the winner, depth coefficients tried for each, the
    short training budget that ranks them, the width fit's bisection steps, the family's name."""

    multiples: tuple[float, ...] = (2.0, 4.0)
    depth_coefs: tuple[float, ...] = (1.0, 1.5, 2.0)
    steps: int = 60
    fit_steps: int = 12
    prefix: str = "searched"


def scale_family(
    base: MetaNetCfg,
    base_macs: int,
    scaling: ScalingSettings,
    img_size: int,
    evaluator: ProxyEvaluator,
    scorer: ProxyEvaluator,
    seed: int,
) -> list[dict[str, Any]]:
    """One scaled network per MACs multiple of ``base``: the depth/width split whose short run
    (``evaluator``) converges fastest, then scored by ``scorer`` (the search's proxy, so its accuracy
    compares with the sampled architectures')."""
    family = []
    for multiple in scaling.multiples:
        candidates = [
            fit_width(base, d, base_macs * multiple, img_size, steps=scaling.fit_steps)
            for d in scaling.depth_coefs
        ]
        results = dict(evaluator.evaluate([c.cfg for c in candidates], [seed] * len(candidates)))
        tried = [
            {
                "depth_coef": c.depth_coef,
                "width_coef": c.width_coef,
                "macs": c.macs,
                "params": c.params,
                "train_loss": results[i].train_loss,
                "accuracy": results[i].accuracy,
            }
            for i, c in enumerate(candidates)
        ]
        pick = min(range(len(candidates)), key=lambda i: tried[i]["train_loss"])
        family.append(
            {
                "name": f"{scaling.prefix}_x{multiple:g}",
                "multiple": multiple,
                **tried[pick],
                "candidates": tried,
                "stages": candidates[pick].cfg.as_dict(),
            }
        )
    return family


def write_family(members: Sequence[dict[str, Any]], folder: Path, img_size: int) -> None:
    """Each member as ``<name>.json`` (its record) and ``<name>.yaml`` (a ``conf/model`` config)."""
    for member in members:
        name = member["name"]
        cfg = metanet_cfg_from_dict(member["stages"])
        atomic_write_text(folder / f"{name}.json", json.dumps({**member, "img_size": img_size}, indent=2))
        atomic_write_text(folder / f"{name}.yaml", model_config(name, cfg, img_size))
