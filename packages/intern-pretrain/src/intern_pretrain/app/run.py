"""Run a stage from the composed app config: each phase built, fitted (resuming when it can), exported.

The run folder is ``cfg.paths.output_dir``::

    config.yaml         the resolved config
    tokenizer/          (Up-A-G) the BPE trained on the run's captions
    checkpoints/        Lightning checkpoints, last.ckpt for resuming
    csv/metrics.csv     logs (the logger group)
    export/             the hand-over folder
    metrics.json        the final metrics
    summary.json        stage, model, steps, final metrics, export path
    bench/              (``evaluate`` set) intern-bench on the export and a random-init baseline
    <phase>/            every phase but the last of a stage made of phases, a run folder of its own

A run folder that holds ``checkpoints/last.ckpt`` resumes from it (``hydra.run.dir=<run folder>``
reruns a folder); ``resume=<ckpt>`` names another. A phase whose ``summary.json`` exists is done and
not run again.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from hydra.utils import instantiate
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from intern_app import config_dir
from intern_arch import load_handover
from intern_data.io import atomic_write_text
from intern_pretrain.app.evaluate import EvaluationError, evaluate_export
from intern_pretrain.app.stages import Phase, check_implemented, phases, resolve_init_from
from intern_pretrain.core import StageConfigError, StageData, StageModule

__all__ = ["run_stage"]

log = logging.getLogger(__name__)


def run_stage(cfg: DictConfig) -> Path:
    """Run ``cfg.stage`` (its phases in order) and benchmark its export; returns the run folder.

    Raises:
        StageUnavailable: a phase's module does not exist yet.
        StageConfigError: a config that cannot run (the message names the field).
        EvaluationError: the benchmark after the run failed (the export is complete).
    """
    run_dir = Path(cfg.paths.output_dir)
    plan = phases(cfg.stage, run_dir)
    for phase in plan:
        check_implemented(phase)  # fail before hours of the first phase, not after
    first = plan[0].stage.get("init_from") if cfg.stage.get("init_from") is None else cfg.stage.init_from
    init_from = resolve_init_from(first, cfg.stage.name, cfg.model.name, cfg.paths.root_dir, config_dir())
    done: dict[str, str] = {}
    for phase in plan:
        last = phase is plan[-1]
        if last or not (phase.run_dir / "summary.json").is_file():
            run_phase(cfg, phase, init_from, resume=last, phases=done if last else None)
        init_from = phase.run_dir / "export"
        done[phase.name] = str(phase.run_dir / "summary.json")
    _evaluate(cfg, run_dir)
    return run_dir


def phase_config(cfg: DictConfig, phase: Phase, resume: bool) -> DictConfig:
    """A copy of ``cfg`` with the phase's stage config and run folder; everything under
    ``${paths.output_dir}`` (checkpoints, logs) follows. ``resume=<ckpt>`` belongs to the last phase."""
    out = copy.deepcopy(cfg)
    out.stage = copy.deepcopy(phase.stage)
    out.paths.output_dir = str(phase.run_dir)
    if not resume:
        out.resume = None
    return out


def run_phase(
    cfg: DictConfig, phase: Phase, init_from: Path | None, resume: bool, phases: dict[str, str] | None = None
) -> Path:
    """Build, fit and export one phase in its run folder; returns the folder."""
    cfg = phase_config(cfg, phase, resume)
    run_dir = phase.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                for k, v in cfg.items() if k != "hydra"}  # fmt: skip
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)

    parent = load_handover(init_from) if init_from is not None else None
    backbone = parent.backbone if parent is not None else instantiate(cfg.model.backbone, num_classes=0)
    source = OmegaConf.to_container(cfg.data, resolve=True)
    data: StageData = instantiate(
        cfg.stage.data, source=source, run_dir=run_dir, seed=int(cfg.seed), backbone=backbone
    )
    module: StageModule = instantiate(cfg.stage.module, backbone=backbone, **data.module_inputs)
    trainer = _trainer(cfg)
    ckpt = _resume_path(cfg, run_dir)
    if ckpt is not None:
        log.info("resuming %s from %s", phase.name, ckpt)
        print(f"resuming from {ckpt}")
    start = time.perf_counter()
    trainer.fit(module, datamodule=data.datamodule, ckpt_path=str(ckpt) if ckpt is not None else None)
    seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return run_dir

    carried = parent.parts if parent is not None and module.carries_parent_parts else None
    export = module.export(
        run_dir / "export",
        carried=carried,
        stage=phase.name,
        parent=str(init_from) if init_from is not None else None,
        label_spaces=parent.config.get("label_spaces") if parent is not None else None,
    )
    metrics = {k: _number(v) for k, v in sorted(trainer.callback_metrics.items())}
    summary = {
        "stage": phase.name,
        "model": cfg.model.name,
        **_progress(trainer, run_dir),
        "fit_seconds": round(seconds, 2),
        "resumed_from": str(ckpt) if ckpt is not None else None,
        "init_from": str(init_from) if init_from is not None else None,
        "metrics": metrics,
        "export": str(export),
        **({"phases": phases} if phases else {}),
    }
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))  # last: the phase is done
    print(f"{phase.name}: {summary['steps']} steps in {seconds:.1f} s; export: {export}")
    return run_dir


def _trainer(cfg: DictConfig) -> L.Trainer:
    """The trainer group's Trainer with the callbacks and loggers; ``progress=false``: without its bar."""
    quiet = {} if cfg.get("progress", True) else {"enable_progress_bar": False}
    return instantiate(cfg.trainer, callbacks=_callbacks(cfg), logger=_loggers(cfg) or False, **quiet)


def _callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The callbacks group's, then the stage's own (its loss guard, its downstream probe)."""
    groups = (cfg.get("callbacks") or {}, cfg.stage.get("callbacks") or {})
    return [instantiate(c) for group in groups for c in group.values() if c is not None]


def _loggers(cfg: DictConfig) -> list[Any]:
    return [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]


def _resume_path(cfg: DictConfig, run_dir: Path) -> Path | None:
    given = cfg.get("resume")
    if given:
        path = Path(str(given)).expanduser()
        if not path.is_file():
            raise StageConfigError(f"resume={given!r} is not a checkpoint file")
        return path
    last = run_dir / "checkpoints" / "last.ckpt"
    return last if last.is_file() else None


def _evaluate(cfg: DictConfig, run_dir: Path) -> None:
    """Benchmark the final export as ``cfg.evaluate`` asks (rank zero only; not under ``fast_dev_run``)."""
    settings = OmegaConf.to_container(cfg.evaluate, resolve=True) if cfg.get("evaluate") else None
    export = run_dir / "export"
    if not settings or getattr(rank_zero_only, "rank", 0) != 0 or not (export / "config.json").is_file():
        return
    if (cfg.get("trainer") or {}).get("fast_dev_run"):
        print("evaluate: skipped under fast_dev_run")
        return
    try:
        evaluate_export(
            export,
            run_dir,
            settings,
            model=cfg.model.backbone.model_name,
            stage=cfg.stage.name,
            root_dir=cfg.paths.root_dir,
        )
    except EvaluationError as err:
        raise EvaluationError(
            f"{err}; the export {export} is complete (evaluate=null skips this step)"
        ) from err


def _progress(trainer: L.Trainer, run_dir: Path) -> dict[str, int]:
    """Steps and epochs done. Under ``ddp_spawn`` the main process's trainer never stepped: read them
    from the last checkpoint then."""
    if trainer.global_step > 0:
        return {"steps": int(trainer.global_step), "epochs": int(trainer.current_epoch)}
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return {"steps": 0, "epochs": 0}
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    return {"steps": int(ckpt["global_step"]), "epochs": int(ckpt["epoch"])}


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
