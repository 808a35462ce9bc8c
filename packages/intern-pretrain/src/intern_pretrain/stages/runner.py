"""Run a stage from the composed app config: build, fit (resuming when it can), export, summarise.

The run folder (DESIGN.md) is ``cfg.paths.output_dir``::

    config.yaml         the resolved config
    tokenizer/          (Up-A-G) the BPE trained on the run's captions
    checkpoints/        Lightning checkpoints, last.ckpt for resuming
    csv/metrics.csv     logs (the logger group)
    export/             the hand-over folder
    metrics.json        the final metrics
    summary.json        stage, model, steps, final metrics, export path
    bench/              (``evaluate`` set) intern-bench on the export and a random-init baseline;
                        the report in bench/report/

``stage=upa`` runs Up-A-G in ``<run folder>/upa_g/`` (its own run folder) and then Up-A-L in the run
folder itself, initialised from ``upa_g/export``. A run folder that holds ``checkpoints/last.ckpt``
resumes from it (``hydra.run.dir=<run folder>`` reruns a folder); ``resume=<ckpt>`` names another.
When the stage is done, ``cfg.evaluate`` (if set, and not under ``fast_dev_run``) benchmarks the final
export with intern-bench (:mod:`intern_pretrain.stages.evaluate`).
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
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from intern_data.sources import DataConfigError
from intern_pretrain.callbacks import LossGuard
from intern_pretrain.stages import (
    STAGES,
    StageConfigError,
    StageUnavailable,
    get_stage,
    instantiate,
    to_plain,
)
from intern_pretrain.stages.evaluate import EvaluationError, evaluate_export

__all__ = ["run_stage", "resolve_init_from"]

log = logging.getLogger(__name__)

# Stages made of phases run one after the other in one run folder.
_PHASES = {"upa": ("upa_g", "upa_l")}


class RunError(Exception):
    """A stage that cannot run as configured: not implemented, a bad config, a missing ``init_from``.
    The app reports its message as one line."""


def run_stage(cfg: Any) -> Path:
    """Run ``cfg.stage`` of the composed app config and return its run folder (the export is
    ``<run folder>/export``).

    Raises:
        RunError: a stage that is not implemented, a config that cannot run, a missing ``init_from``.
    """
    name = cfg.stage.name
    run_dir = Path(cfg.paths.output_dir)
    try:
        if name in _PHASES:
            run_dir = _run_phases(cfg, run_dir)
        elif name not in STAGES:
            raise StageUnavailable(f"stage {name!r} is not implemented")
        else:
            run_dir = _run_one(cfg, run_dir, resolve_init_from(cfg))
    except (StageUnavailable, StageConfigError, DataConfigError) as err:
        raise RunError(str(err)) from err
    _evaluate(cfg, run_dir)
    return run_dir


def _evaluate(cfg: Any, run_dir: Path) -> None:
    """Benchmark the final export as ``cfg.evaluate`` asks (rank zero only; not under ``fast_dev_run``)."""
    settings = to_plain(cfg.get("evaluate"))
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
        raise RunError(f"{err}; the export {export} is complete (evaluate=null skips this step)") from err


def _run_phases(cfg: Any, run_dir: Path) -> Path:
    """Up-A: Up-A-G in ``run_dir/upa_g``, then Up-A-L in ``run_dir`` from the Up-A-G export."""
    first, second = _PHASES[cfg.stage.name]
    get_stage(second)  # fail before hours of the first phase, not after
    first_dir = run_dir / first
    # the first phase is finished once the second has a checkpoint; otherwise (re)run or resume it
    done = (first_dir / "summary.json").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    if not done:
        _run_one(_phase_cfg(cfg, cfg.stage[first], first_dir, resume=False), first_dir, None)
    second_cfg = _phase_cfg(cfg, cfg.stage[second], run_dir, resume=True)
    return _run_one(second_cfg, run_dir, first_dir / "export", parts={first: str(first_dir / "summary.json")})


def _phase_cfg(cfg: Any, stage: Any, out_dir: Path, resume: bool) -> Any:
    """A copy of ``cfg`` with ``stage`` as its stage and ``out_dir`` as its run folder; everything under
    ``${paths.output_dir}`` (checkpoints, logs) follows. ``resume`` keeps the ``resume=<ckpt>`` given
    (it belongs to the last phase)."""
    phase = copy.deepcopy(cfg)
    phase.stage = copy.deepcopy(stage)
    phase.paths.output_dir = str(out_dir)
    if not resume:
        phase.resume = None
    return phase


def resolve_init_from(cfg: Any) -> Path | None:
    """The hand-over folder ``cfg.stage.init_from`` names: a path, or a stage name meaning the newest
    run of that stage with the same model under ``<root>/runs``; None when the stage starts fresh.

    Raises:
        StageConfigError: the field is missing or names no hand-over folder (the message names it).
    """
    value = cfg.stage.get("init_from")
    name = cfg.stage.name
    if value is None:
        return None
    if not isinstance(value, str | Path):
        raise StageConfigError(f"stage.init_from of {name} must be one folder, got {to_plain(value)}")
    value = str(value)
    if value in STAGES or value in _PHASES:
        runs = Path(cfg.paths.root_dir) / "runs" / value / cfg.model.name
        found = sorted(p.parent for p in runs.glob("*/export/config.json"))
        if not found:
            raise StageConfigError(
                f"stage.init_from={value!r}: no {value} export under {runs}; run stage={value} first "
                f"or pass stage.init_from=<path to a {value} export folder>"
            )
        return found[-1]
    folder = Path(value).expanduser()
    if not (folder / "config.json").is_file():
        raise StageConfigError(
            f"stage.init_from={value!r} is not a hand-over folder (no config.json); "
            "pass the export/ folder of an earlier run"
        )
    return folder


def _callbacks(cfg: Any) -> list[L.Callback]:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    guard = to_plain(cfg.stage.get("loss_guard"))
    if guard is not None and guard.get("enabled", False):
        callbacks.append(LossGuard(**guard))
    return callbacks


def _loggers(cfg: Any) -> list[Any]:
    return [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]


def _resume_path(cfg: Any, run_dir: Path) -> Path | None:
    given = cfg.get("resume")
    if given:
        path = Path(str(given)).expanduser()
        if not path.is_file():
            raise StageConfigError(f"resume={given!r} is not a checkpoint file")
        return path
    last = run_dir / "checkpoints" / "last.ckpt"
    return last if last.is_file() else None


def _run_one(cfg: Any, run_dir: Path, init_from: Path | None, parts: dict[str, str] | None = None) -> Path:
    name = cfg.stage.name
    stage = get_stage(name)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = {k: to_plain(v) for k, v in cfg.items() if k != "hydra"}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    module, datamodule = stage.build(cfg, init_from)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=_callbacks(cfg), logger=_loggers(cfg) or False)
    ckpt = _resume_path(cfg, run_dir)
    if ckpt is not None:
        log.info("resuming %s from %s", name, ckpt)
        print(f"resuming from {ckpt}")
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt) if ckpt is not None else None)
    seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return run_dir
    export_dir = stage.export(module, run_dir / "export")
    metrics = {k: _number(v) for k, v in sorted(trainer.callback_metrics.items())}
    summary = {
        "stage": name,
        "model": cfg.model.name,
        **_progress(trainer, run_dir),
        "fit_seconds": round(seconds, 2),
        "resumed_from": str(ckpt) if ckpt is not None else None,
        "init_from": str(init_from) if init_from is not None else None,
        "metrics": metrics,
        "export": str(export_dir),
        **({"phases": parts} if parts else {}),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{name}: {summary['steps']} steps in {seconds:.1f} s; export: {export_dir}")
    return run_dir


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
