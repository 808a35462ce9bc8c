"""One benchmark cell (a backbone x a task x a data regime) from config to a stored ``result.json``.

The backbone is ``checkpoint`` (an INTERN hand-over folder), else ``backbone`` (``timm:<name>`` with
``weights``, ``efficientnet_lite0``, a registered name), else the composed ``model`` config's
registered model. Classification tasks run the linear probe of ``protocol``; dense tasks train the
``dense`` head on the frozen backbone. Both run under the cell's Trainer (:mod:`intern_bench.execution`).
Every result carries the full config, the backbone's fingerprint, the regime manifest's hash, the seed,
the precision and the device count.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch

from intern_bench.execution import TrainerFactory, autocast_dtype, log_cell, plain_trainer, require_one_device
from intern_bench.protocols.dense import PRIMARY_KEYS, run_dense
from intern_bench.protocols.linear_probe import run_linear_probe
from intern_bench.report import tsne_plot
from intern_bench.results import BenchResult, metric_higher_is_better, save
from intern_bench.task_data import task_shards
from intern_data.progress import progress_bar
from intern_data.shards import load_index
from intern_data.splits import SplitManifest
from intern_data.tasks import TaskSpec, get_suite, task_from_config
from intern_transfer.backbones import LoadedBackbone, load_backbone
from intern_transfer.probe import FeatureCache


def backbone_spec(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """(spec for ``load_backbone``, display name) from ``checkpoint``, ``backbone`` or ``model``."""
    if cfg.get("checkpoint"):
        return str(cfg["checkpoint"]), cfg.get("name") or Path(cfg["checkpoint"]).name
    if cfg.get("backbone"):
        return str(cfg["backbone"]), cfg.get("name") or str(cfg["backbone"])
    name = cfg["model"]["backbone"]["model_name"]
    return name, cfg.get("name") or f"{name} (random init)"


def _class_names(spec: TaskSpec, root: Path) -> list[str]:
    space = load_index(root).get("label_space")
    return list(space["classes"]) if space else [str(i) for i in range(spec.num_classes or 0)]


Outcome = tuple[dict[str, float], SplitManifest, str, str]
"""A cell's (metrics, regime manifest, primary metric, protocol name)."""


def _probe_cell(
    cfg: Mapping[str, Any],
    loaded: LoadedBackbone,
    display: str,
    spec: TaskSpec,
    root: Path,
    rule: str,
    trainer: L.Trainer,
    out_dir: Path,
) -> Outcome:
    """The linear probe of ``protocol`` on features extracted on the Trainer's device and precision."""
    protocol, seed = cfg["protocol"], int(cfg["seed"])
    loaded.model.to(trainer.strategy.root_device)
    outcome = run_linear_probe(
        loaded.model,
        loaded.preprocess,
        loaded.fingerprint,
        loaded.preprocess_cfg,
        train=(root, spec.splits["train"]),
        test=(root, spec.splits["test"]),
        rule=rule,
        num_classes=int(spec.num_classes),
        metric=spec.metric,
        protocol=protocol,
        seed=seed,
        cache=FeatureCache(Path(cfg["cache_dir"]) / "features"),
        batch_size=int(protocol["feature_batch_size"]),
        autocast_dtype=autocast_dtype(trainer),
        progress=bool(cfg.get("progress", True)),
    )
    probe = outcome.details["probe"]
    cell = {"model": display, "task": spec.name, "split": rule, "seed": seed, "protocol": protocol["name"]}
    chosen = {"precision": trainer.precision, "strategy": probe["strategy"], "head": probe["hparams"]}
    log_cell(trainer, outcome.metrics, {**cell, **chosen})
    if cfg.get("tsne"):
        feats, classes = outcome.test_features, _class_names(spec, root)
        title = f"{display} on {spec.name} (test features)"
        tsne_plot(feats.features, feats.labels, classes, title, out_dir / "tsne.png", seed=seed)
    return outcome.metrics, outcome.manifest, spec.metric, protocol["name"]


def _dense_cell(
    cfg: Mapping[str, Any], loaded: LoadedBackbone, spec: TaskSpec, root: Path, rule: str, trainer: L.Trainer
) -> Outcome:
    """The ``dense`` head trained and tested with the Trainer."""
    dense = cfg["dense"]
    raw, manifest = run_dense(
        loaded.backbone, spec, root, rule=rule, seed=int(cfg["seed"]), protocol=dense,
        img_size=loaded.input_size, trainer=trainer, parts=loaded.parts,
    )  # fmt: skip
    scale = 1.0 if spec.type == "depth" else 100.0  # AP, MR and IoU in percent, RMSE in metres
    metrics = {k: v * scale if not k.startswith("num_") else v for k, v in raw.items()}
    name = "frozen_dense" if dense["freeze_backbone"] else "finetune"
    if dense.get("init_heads"):
        name += "_init_heads"
    return metrics, manifest, PRIMARY_KEYS[spec.type], name


def _cell_trainer(
    cfg: Mapping[str, Any], spec: TaskSpec, out_dir: Path, make_trainer: TrainerFactory
) -> L.Trainer:
    """The cell's Trainer, refused before any work when the cell cannot run under it."""
    if spec.type == "classification":
        trainer = make_trainer(out_dir)
        autocast_dtype(trainer)  # a precision the probe cannot extract features in fails here
    else:
        progress = bool(cfg.get("progress", True))
        trainer = make_trainer(out_dir, max_epochs=int(cfg["dense"]["epochs"]), enable_progress_bar=progress)
    require_one_device(trainer)
    return trainer


def run_cell(
    cfg: Mapping[str, Any],
    loaded: LoadedBackbone,
    display: str,
    spec: TaskSpec,
    rule: str,
    out_dir: Path,
    make_trainer: TrainerFactory = plain_trainer,
) -> BenchResult:
    """Evaluate ``loaded`` on the task ``spec`` under regime ``rule`` with ``make_trainer(out_dir)``'s
    Trainer (dense cells: ``dense.epochs`` epochs); save and return the result."""
    start = time.perf_counter()
    trainer = _cell_trainer(cfg, spec, out_dir, make_trainer)
    root = task_shards(spec, data_root=cfg["data_root"], cache_dir=cfg["cache_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.type == "classification":
        outcome = _probe_cell(cfg, loaded, display, spec, root, rule, trainer, out_dir)
    else:
        outcome = _dense_cell(cfg, loaded, spec, root, rule, trainer)
    metrics, manifest, primary, protocol = outcome
    result = BenchResult(
        model=display,
        model_fingerprint=loaded.fingerprint,
        task=spec.name,
        task_type=spec.type,
        split=rule,
        split_hash=manifest.keys_hash,
        seed=int(cfg["seed"]),
        protocol=protocol,
        metrics={k: float(v) for k, v in metrics.items()},
        primary_metric=primary,
        higher_is_better=metric_higher_is_better(primary),
        config=dict(cfg),
        duration_s=time.perf_counter() - start,
        precision=trainer.precision,
        devices=trainer.world_size,
    )
    save(result, out_dir)
    return result


def run_bench(
    cfg: Mapping[str, Any],
    out_dir: Path,
    make_trainer: TrainerFactory = plain_trainer,
    registry: Mapping[str, TaskSpec] | None = None,
) -> list[BenchResult]:
    """Every cell ``cfg`` asks for: ``suite`` (its tasks from ``registry``, the app's task configs) or
    ``task`` (the composed task config) x ``splits`` (or ``split``); each cell of several runs in its own
    folder ``<out_dir>/<task>/<split>`` (see :func:`run_cell`)."""
    torch.manual_seed(int(cfg["seed"]))
    spec, display = backbone_spec(cfg)
    loaded = load_backbone(spec, weights=cfg.get("weights"), img_size=cfg.get("img_size"))
    if cfg.get("suite"):
        tasks = list(get_suite(registry or {}, cfg["suite"]))
    else:
        tasks = [task_from_config(cfg["task"])]
    rules = list(cfg.get("splits") or [cfg["split"]])
    single = len(tasks) == 1 and len(rules) == 1
    cells = [(task, rule) for task in tasks for rule in rules]
    progress = bool(cfg.get("progress", True))
    results = []
    for task, rule in progress_bar(cells, desc="cells", unit="cell", enabled=progress):
        folder = out_dir if single else out_dir / task.name / rule
        results.append(run_cell(cfg, loaded, display, task, rule, folder, make_trainer))
    return results
