"""One benchmark cell (a backbone x a task x a data regime x a draw) from config to a stored ``result.json``.

The backbone is ``checkpoint`` (an INTERN hand-over folder), else ``backbone`` (``timm:<name>`` with
``weights``, ``efficientnet_lite0``, a registered name, ``pixels``), else the composed ``model``
config's registered model. Classification tasks run the linear probe of ``protocol``; dense tasks train
the ``dense`` head on the frozen backbone. Both run under the cell's Trainer
(:mod:`intern_bench.execution`). Each seed of ``split_seeds`` (default ``[seed]``) draws the regime
anew, with its own validation carve-out and head training; ``seed`` alone initialises a random-init
model. ``pixels`` reads each task at its own resolution (its first training image's shorter side, at
most :data:`PIXELS_MAX_SIZE`) unless ``img_size`` is set, and is refused for dense tasks. Every result
carries the full config, the backbone's fingerprint, the regime manifest's hash, the run's seed and the
draw's, the precision and the device count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch

from intern_bench.cost import ProbeCell, cost_line
from intern_bench.execution import TrainerFactory, autocast_dtype, log_cell, plain_trainer, require_one_device
from intern_bench.metrics import classification_metric
from intern_bench.protocols.dense import PRIMARY_KEYS, run_dense, task_metric
from intern_bench.protocols.linear_probe import run_linear_probe
from intern_bench.report import tsne_plot
from intern_bench.results import BenchResult, metric_higher_is_better, save
from intern_bench.run_name import handover_name
from intern_data.progress import progress_bar
from intern_data.regimes import task_resolution, task_shards
from intern_data.shards import load_index
from intern_data.splits import SplitManifest
from intern_data.tasks import TaskSpec, get_suite, task_from_config
from intern_transfer.backbones import PIXELS, BackboneSpecError, LoadedBackbone, load_backbone
from intern_transfer.downa import adapt_to_task, transfer_task
from intern_transfer.probe import FeatureCache

PIXELS_MAX_SIZE = 32
"""``pixels`` reads a task at most at 32 px (3,072 features: a ``protocol=fast`` cell of 10,000 images
within 2 minutes on 2 cores) unless ``img_size`` says otherwise."""


def describe_model(cfg: Mapping[str, Any]) -> str:
    """The banner's line naming the model measured (as reports name it) and where it comes from."""
    _, display = backbone_spec(cfg)
    if cfg.get("checkpoint"):
        origin = handover_name(cfg["checkpoint"])
        return f"model: {display} (checkpoint={cfg['checkpoint']}, a {origin} hand-over)"
    if cfg.get("backbone"):
        return f"model: {display} (backbone={cfg['backbone']})"
    return f"model: {cfg.get('name') or cfg['model']['name']} (random init, model={cfg['model']['name']})"


def backbone_spec(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """(spec for ``load_backbone``, display name) from ``checkpoint`` (its folder's name), ``backbone`` or
    ``model``; ``name`` overrides the display name."""
    if cfg.get("checkpoint"):
        return str(cfg["checkpoint"]), cfg.get("name") or Path(cfg["checkpoint"]).name
    if cfg.get("backbone"):
        return str(cfg["backbone"]), cfg.get("name") or str(cfg["backbone"])
    name = cfg["model"]["backbone"]["model_name"]
    return name, cfg.get("name") or f"{name} (random init)"


def split_seeds(cfg: Mapping[str, Any]) -> list[int]:
    """The seeds of each regime's draws: ``split_seeds``, else ``[seed]`` (one draw, the paper's protocol)."""
    seeds = cfg.get("split_seeds")
    if seeds is None:
        return [int(cfg["seed"])]
    valid = isinstance(seeds, list | tuple) and seeds and all(type(seed) is int for seed in seeds)
    if not valid or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"split_seeds={seeds}: give distinct integer seeds, e.g. [0,1,2], or null for [seed]"
        )
    return list(seeds)


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
    """The linear probe of ``protocol`` on features extracted on the Trainer's device and precision; the
    cell's ``seed`` (its split seed) draws the regime, carves the validation part and orders SGD batches."""
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


def _transfer_cell(
    cfg: Mapping[str, Any],
    loaded: LoadedBackbone,
    spec: TaskSpec,
    root: Path,
    rule: str,
    out_dir: Path,
    make_trainer: TrainerFactory,
) -> Outcome:
    """One of Down-A's methods (``protocol.method``: lp, ft or mf) with the ``downa`` settings, run by
    intern-transfer's library and scored with the task's GV-B metric; MF adds its FD scores and leaves
    ``transfer/reconstructions.png`` in the cell's folder."""
    method = str(cfg["protocol"]["method"])
    if spec.type == "classification":
        classes, primary = int(spec.num_classes), spec.metric
        # the adapter logs a single-tensor metric as "accuracy"; the result names it by the task's metric
        metric: tuple[Callable[[], Any], str] = (lambda: classification_metric(primary, classes), "accuracy")
    else:
        primary = PRIMARY_KEYS[spec.type]
        metric = (task_metric(spec), primary)
    downa = cfg["downa"]
    task = transfer_task(spec, loaded.input_size, metric, downa["detector_kwargs"])
    adapted = adapt_to_task(
        downa, method, task, root, spec, rule=rule, seed=int(cfg["seed"]), backbone=loaded.backbone,
        backbone_id=loaded.fingerprint, cache_dir=Path(cfg["cache_dir"]), run_dir=out_dir / "transfer",
        make_trainer=make_trainer,
    )  # fmt: skip
    metrics = {key: value * 100.0 for key, value in adapted.outcome.test.items()}  # accuracy, AP, IoU in %
    metrics[primary] = metrics.pop(metric[1])
    metrics.update({"num_train_images": float(adapted.num_train), "num_val_images": float(adapted.num_val)})
    metrics.update(adapted.fd)
    for stage, point in adapted.outcome.chosen.items():
        metrics.update({f"{stage}_lr": point.lr, f"{stage}_weight_decay": point.weight_decay})
    return metrics, adapted.manifest, primary, method


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
    split_seed: int | None = None,
) -> BenchResult:
    """Evaluate ``loaded`` on the task ``spec`` under regime ``rule``, drawn with ``split_seed`` (default
    ``seed``), with ``make_trainer(out_dir)``'s Trainer (dense cells: ``dense.epochs`` epochs); save and
    return the result."""
    start = time.perf_counter()
    draw = int(cfg["seed"]) if split_seed is None else split_seed
    cell = {**cfg, "seed": draw}
    trainer = _cell_trainer(cfg, spec, out_dir, make_trainer)
    root = task_shards(spec, data_root=cfg["data_root"], cache_dir=cfg["cache_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if (cfg.get("protocol") or {}).get("method"):
        outcome = _transfer_cell(cell, loaded, spec, root, rule, out_dir, make_trainer)
    elif spec.type == "classification":
        outcome = _probe_cell(cell, loaded, display, spec, root, rule, trainer, out_dir)
    else:
        outcome = _dense_cell(cell, loaded, spec, root, rule, trainer)
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
        split_seed=draw,
    )
    save(result, out_dir)
    return result


def _backbones(cfg: Mapping[str, Any], spec: str, tasks: list[TaskSpec]) -> dict[str, LoadedBackbone]:
    """The loaded backbone of each task: one for all, but ``pixels`` at each task's resolution."""
    if spec != PIXELS:
        loaded = load_backbone(spec, weights=cfg.get("weights"), img_size=cfg.get("img_size"))
        return {task.name: loaded for task in tasks}
    dense = [f"{task.name} ({task.type})" for task in tasks if task.type != "classification"]
    if dense:
        raise BackboneSpecError(
            f"backbone=pixels is a baseline for classification tasks; not for {', '.join(dense)}"
        )
    by_size: dict[int, LoadedBackbone] = {}
    out = {}
    for task in tasks:
        size = cfg.get("img_size")
        if not size:
            root = task_shards(task, data_root=cfg["data_root"], cache_dir=cfg["cache_dir"])
            size = min(task_resolution(root, task.splits["train"]), PIXELS_MAX_SIZE)
        if size not in by_size:
            by_size[size] = load_backbone(PIXELS, weights=cfg.get("weights"), img_size=int(size))
        out[task.name] = by_size[size]
    return out


def run_bench(
    cfg: Mapping[str, Any],
    out_dir: Path,
    make_trainer: TrainerFactory = plain_trainer,
    registry: Mapping[str, TaskSpec] | None = None,
    announce: Callable[[str], None] | None = None,
) -> list[BenchResult]:
    """Every cell ``cfg`` asks for: ``suite`` (its tasks from ``registry``, the app's task configs) or
    ``task`` (the composed task config) x ``splits`` (or ``split``) x ``split_seeds`` (or ``[seed]``). Each
    cell of several runs in its own folder ``<out_dir>/<task>/<split>``, ``.../<split>/seed<k>`` with
    several seeds (see :func:`run_cell`). ``announce`` gets the cost line (:mod:`intern_bench.cost`)
    before the first cell."""
    torch.manual_seed(int(cfg["seed"]))
    spec, display = backbone_spec(cfg)
    if cfg.get("suite"):
        tasks = list(get_suite(registry or {}, cfg["suite"]))
    else:
        tasks = [task_from_config(cfg["task"])]
    rules = list(cfg.get("splits") or [cfg["split"]])
    seeds = split_seeds(cfg)
    loaded = _backbones(cfg, spec, tasks)
    cells = [(task, rule, seed) for task in tasks for rule in rules for seed in seeds]
    method = (cfg.get("protocol") or {}).get("method")
    if announce is not None and method:
        announce(f"{len(cells)} cell(s) of Down-A's {method} (settings: downa), each training its grids")
    elif announce is not None:
        probes = [
            ProbeCell(t, r, loaded[t.name].feature_dim) for t, r, _ in cells if t.type == "classification"
        ]
        announce(cost_line(cfg["protocol"], probes, len(cells) - len(probes), cfg["dense"]))
    progress = bool(cfg.get("progress", True))
    results = []
    for task, rule, seed in progress_bar(cells, desc="cells", unit="cell", enabled=progress):
        folder = out_dir if len(cells) == 1 else out_dir / task.name / rule
        if len(seeds) > 1:
            folder = folder / f"seed{seed}"
        results.append(run_cell(cfg, loaded[task.name], display, task, rule, folder, make_trainer, seed))
    return results
