"""``python -m intern_pretrain stage=search``: the GV-A search run from its stage config.

Run folder (``cfg.paths.output_dir``)::

    config.yaml          the resolved config
    search_log.jsonl     every evaluated architecture (intern_pretrain.search.loop)
    search_state.pt      the policy and the batch in flight (resume)
    references.json      the reference models on the same proxy
    top_k.json           the top-k retrained longer
    family/<name>.json   the winner and its scaled members, and <name>.yaml as conf/model configs
    report/rewards.png   reward over controller updates
    report/pareto.png    proxy accuracy against MACs, Pareto front, references and family
    summary.json         the outcome

Rerunning the folder (``hydra.run.dir=<run folder>``) resumes: finished evaluations are read from the log
and the proxy cache, the policy from its state.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from omegaconf import DictConfig, OmegaConf

from intern_arch import metanet_cfgs
from intern_arch.models.metanet import metanet_cfg_from_dict
from intern_arch.profile import profile_metanet
from intern_arch.search import PPOSettings, SearchSpace
from intern_data.io import atomic_write_text
from intern_data.world import get_dataset, world_shards
from intern_pretrain.app.lock import run_folder_lock
from intern_pretrain.app.run import write_resolved_config
from intern_pretrain.core import StageConfigError
from intern_pretrain.search import (
    ProxyEvaluator,
    ProxySettings,
    ScalingSettings,
    SearchSettings,
    load_proxy_data,
    plot_pareto,
    plot_rewards,
    retrain_top_k,
    run_search,
    scale_family,
    write_family,
)

__all__ = ["run_search_stage"]

T = TypeVar("T")


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _settings(cls: type[T], node: DictConfig, field: str, **changes: Any) -> T:
    """``cls`` from config ``node``; a wrong key or value fails in one line naming ``field``."""
    try:
        return cls(**(_plain(node) | changes))
    except (TypeError, ValueError) as err:
        raise StageConfigError(f"{field}: {err}") from None


def _check_references(names: list[str]) -> None:
    unknown = [name for name in names if name not in metanet_cfgs]
    if unknown:
        raise StageConfigError(
            f"stage.references: {unknown} are not MetaNet variants; choose from {sorted(metanet_cfgs)}"
        )


def _proxy_loader(data: DictConfig, root_dir: str, img_size: int) -> functools.partial:
    """A picklable loader of the proxy data (world shards made here at ``img_size``, once, before any
    worker process starts)."""
    if data.shards:
        folder, num_classes = Path(data.shards), data.get("num_classes")
    else:
        splits = [data.train_split, data.val_split]
        cache = Path(root_dir) / "cache" / "world"
        folder = world_shards(data.world, cache, splits, img_size=img_size, sizes=_plain(data.sizes))
        num_classes = len(get_dataset(data.world).label_space)
    return functools.partial(load_proxy_data, folder, data.train_split, data.val_split, num_classes)


def run_search_stage(cfg: DictConfig) -> Path:
    """Search, then (``stage.top_k.k > 0``) retrain the top-k, scale the winner, write the family;
    the figures and the summary either way."""
    stage = cfg.stage
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(run_dir):
        write_resolved_config(cfg, run_dir)
        space = SearchSpace.from_config(_plain(stage.space))
        settings = _settings(SearchSettings, stage.search, "stage.search")
        ppo = _settings(PPOSettings, stage.ppo, "stage.ppo")
        scaling = _settings(ScalingSettings, stage.scaling, "stage.scaling")
        _settings(ProxySettings, stage.proxy.train, "stage.proxy.train")
        _check_references(list(stage.references))
        print(
            f"search space: {space.size:.3g} architectures ({space.num_stages} stages x "
            f"{space.size ** (1 / space.num_stages):.0f} choices); {settings.evaluations} evaluated, "
            f"policy {settings.policy}"
        )
        load = _proxy_loader(stage.proxy.data, cfg.paths.root_dir, settings.img_size)
        devices = torch.cuda.device_count()  # proxy runs spread over the GPUs there are

        def evaluator(steps: int | None = None) -> ProxyEvaluator:
            train = _settings(
                ProxySettings, stage.proxy.train, "stage.proxy.train", **({"steps": steps} if steps else {})
            )
            return ProxyEvaluator(load, train, stage.proxy.cache_dir, stage.proxy.workers, devices)

        records = run_search(space, settings, ppo, evaluator(), run_dir)
        references = _references(list(stage.references), settings, evaluator())
        atomic_write_text(run_dir / "references.json", json.dumps(references, indent=2))
        members = _family(stage, settings, scaling, records, evaluator, run_dir) if stage.top_k.k > 0 else []
        plot_rewards(records, run_dir / "report" / "rewards.png")
        plot_pareto(records, references, members, run_dir / "report" / "pareto.png")
        summary = {
            "stage": "search",
            "policy": settings.policy,
            "evaluations": len(records),
            "space_size": space.size,
            "best": {k: v for k, v in max(records, key=lambda r: r["reward"]).items() if k != "stages"},
            "family": [
                {k: m[k] for k in ("name", "multiple", "macs", "params", "accuracy")} for m in members
            ],
        }
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    print(
        f"search: {len(records)} architectures, best {summary['best']['arch']} (reward "
        f"{summary['best']['reward']:.4f}); report in {run_dir / 'report'}"
    )
    return run_dir


def _family(
    stage: DictConfig,
    settings: SearchSettings,
    scaling: ScalingSettings,
    records: list[dict[str, Any]],
    evaluator: Callable[..., ProxyEvaluator],
    run_dir: Path,
) -> list[dict[str, Any]]:
    """Top-k retrained longer (``top_k.json``), the winner scaled (``family/``); the family's members."""
    top = retrain_top_k(records, stage.top_k.k, evaluator(stage.top_k.steps), settings)
    atomic_write_text(run_dir / "top_k.json", json.dumps(top, indent=2))
    winner = top[0]
    members = [
        {"name": scaling.prefix, "multiple": 1.0}
        | {k: winner[k] for k in ("macs", "params", "accuracy", "stages")}
    ]
    members += scale_family(
        metanet_cfg_from_dict(winner["stages"]),
        winner["macs"],
        scaling,
        settings.img_size,
        evaluator(scaling.steps),
        evaluator(),
        settings.seed,
    )
    write_family(members, run_dir / "family", settings.img_size)
    return members


def _references(
    names: list[str], settings: SearchSettings, evaluator: ProxyEvaluator
) -> list[dict[str, Any]]:
    cfgs = [metanet_cfgs[name] for name in names]
    out: list[dict[str, Any]] = [{} for _ in names]
    for i, result in evaluator.evaluate(cfgs, [settings.seed] * len(cfgs)):
        macs = profile_metanet(cfgs[i], settings.img_size).macs
        out[i] = {
            "name": names[i],
            "macs": macs,
            "accuracy": result.accuracy,
            "reward": settings.reward(result.accuracy, macs),
        }
    return out
