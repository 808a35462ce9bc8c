"""Run a stage from the composed app config: each phase built, fitted (resuming when it can), exported.

The run folder is ``cfg.paths.output_dir``::

    .lock               held by the process running in the folder
    config.yaml         the resolved config
    tokenizer/          (Up-A-G) the BPE trained on the run's captions
    checkpoints/        Lightning checkpoints (last.ckpt at epoch ends, step.ckpt every N steps)
    csv/metrics.csv     logs (the logger group)
    export/             the hand-over folder
    metrics.json        the final metrics
    summary.json        stage, model, steps, final metrics, the data's skip counts, export path
    bench/              (``evaluate`` set) intern-bench on the export and its baselines
    <phase>/            every phase but the last of a stage made of phases, a run folder of its own

Each phase after the first starts from the previous phase's export (Up-A: Up-A-G then Up-A-L), unless
``stage.parents`` names another earlier phase, or null for the stage's ``init_from`` (``upe``: the three
experts each from Up-A's export). Every export no later phase starts from is benchmarked.

A run folder resumes from the newest checkpoint of its ``checkpoints/`` that loads (``hydra.run.dir=
<run folder>`` reruns a folder; a damaged checkpoint is skipped, saying so); ``resume=<ckpt>`` names
another. The CSV and TensorBoard logs keep the steps before the resume point. A phase whose
``summary.json`` exists is done and not run again; ``metrics.json`` and ``summary.json`` are never
replaced by less than they held. One process at a time runs in a run folder (:mod:`.lock`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from intern_app import config_dir
from intern_arch import Handover, load_handover
from intern_arch.sharding import full_state_dict, is_sharded
from intern_data.io import atomic_write_text
from intern_data.shards import ReaderPosition
from intern_pretrain.app.evaluate import EvaluationError, evaluate_export
from intern_pretrain.app.lock import run_folder_lock
from intern_pretrain.app.sources import source_configs
from intern_pretrain.app.stages import (
    Phase,
    check_implemented,
    phase_parents,
    phases,
    plan_dir,
    resolve_init_from,
)
from intern_pretrain.core import StageConfigError, StageData, StageModule
from intern_transfer.runs import ResumableCSVLogger, checkpoint_meta, checkpoint_problem, newest_checkpoint

__all__ = ["run_stage", "write_resolved_config"]

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
    given = _given_resume(cfg)
    starts = phase_parents(cfg.stage, plan)
    with run_folder_lock(run_dir) if rank_zero_only.rank == 0 else contextlib.nullcontext():
        done: dict[str, str] = {}
        parents: dict[str, Path | None] = {}
        for phase in plan:
            last = phase is plan[-1]
            start = starts[phase.name]
            parents[phase.name] = init_from if start is None else plan_dir(plan, start) / "export"
            if last or not (phase.run_dir / "summary.json").is_file():
                run_phase(
                    cfg,
                    phase,
                    parents[phase.name],
                    resume=given if last else None,
                    phases=done if last else None,
                )
            done[phase.name] = str(phase.run_dir / "summary.json")
        started_from = {start for start in starts.values() if start is not None}
        results = [phase for phase in plan if phase.name not in started_from]  # no later phase starts from
        for phase in results:
            name = cfg.stage.name if len(results) == 1 else phase.name
            _evaluate(cfg, phase, parents[phase.name], name)
    return run_dir


def phase_config(cfg: DictConfig, phase: Phase) -> DictConfig:
    """A copy of ``cfg`` with the phase's stage config and run folder; everything under
    ``${paths.output_dir}`` (checkpoints, logs) follows."""
    out = copy.deepcopy(cfg)
    out.stage = copy.deepcopy(phase.stage)
    out.paths.output_dir = str(phase.run_dir)
    return out


def run_phase(
    cfg: DictConfig,
    phase: Phase,
    init_from: Path | None,
    resume: Path | None = None,
    phases: dict[str, str] | None = None,
) -> Path:
    """Build, fit and export one phase in its run folder; returns the folder. ``resume``: a checkpoint
    to resume from, else the newest one of the folder that loads."""
    cfg = phase_config(cfg, phase)
    run_dir = phase.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    write_resolved_config(cfg, run_dir)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)

    parent, backbone = _start(cfg, init_from)
    source = OmegaConf.to_container(cfg.data, resolve=True)
    settings, named = _named_sources(cfg.stage.data, cfg.paths.root_dir)
    data: StageData = instantiate(
        settings, source=source, run_dir=run_dir, seed=int(cfg.seed), backbone=backbone, **named
    )
    module = _module(cfg, backbone, parent, data)
    ckpt = resume or newest_checkpoint(run_dir / "checkpoints", report=print)
    trainer = _trainer(cfg, _step_of(ckpt) if ckpt is not None else 0)
    _refuse_relaunch_in_sweep(trainer)
    if ckpt is not None:
        log.info("resuming %s from %s", phase.name, ckpt)
        print(f"resuming from {ckpt}")
    start = time.perf_counter()
    trainer.fit(module, datamodule=data.datamodule, ckpt_path=str(ckpt) if ckpt is not None else None)
    seconds = time.perf_counter() - start
    sharded = is_sharded(module)
    if sharded:
        module = _gathered(module, cfg, init_from, data)  # every rank gathers; rank 0 gets the weights
    if not trainer.is_global_zero:
        return run_dir
    if sharded and init_from is not None:
        parent = load_handover(init_from)  # parts that were sharded with the module, as they were loaded

    carried = parent.parts if parent is not None and module.carries_parent_parts else None
    export = module.export(
        run_dir / "export",
        carried=carried,
        stage=phase.name,
        parent=str(init_from) if init_from is not None else None,
        label_spaces=module.label_spaces()
        or (parent.config.get("label_spaces") if parent is not None else None),
    )
    metrics = {
        **_previous(run_dir / "metrics.json"),
        **{k: _number(v) for k, v in trainer.callback_metrics.items()},
    }
    metrics = dict(sorted(metrics.items()))
    summary = {
        "stage": phase.name,
        "model": cfg.model.name,
        **_progress(trainer, run_dir),
        "data": _data_counts(data.datamodule),
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


def _start(cfg: DictConfig, init_from: Path | None) -> tuple[Handover | None, nn.Module]:
    """The hand-over a phase starts from (None: from scratch) and its backbone, or the model config's."""
    parent = load_handover(init_from) if init_from is not None else None
    backbone = parent.backbone if parent is not None else instantiate(cfg.model.backbone, num_classes=0)
    return parent, backbone


def _module(cfg: DictConfig, backbone: nn.Module, parent: Handover | None, data: StageData) -> StageModule:
    """The stage's module on ``backbone``, with the data's inputs and the parent's parts it uses."""
    inputs = dict(data.module_inputs)
    used = get_class(cfg.stage.module._target_).parent_parts_used
    if used:
        parts = parent.parts if parent is not None else {}
        inputs["parent_parts"] = {name: parts[name] for name in used if name in parts}
    return instantiate(cfg.stage.module, backbone=backbone, **inputs)


def _gathered(module: StageModule, cfg: DictConfig, init_from: Path | None, data: StageData) -> StageModule:
    """A sharded module's weights gathered (every rank takes part) into a plain copy built again on rank
    0, which exports like any run's; other ranks get the sharded module back."""
    state = full_state_dict(module)
    if not state:
        return module
    parent, backbone = _start(cfg, init_from)
    plain = _module(cfg, backbone, parent, data)
    plain.load_state_dict(state)
    return plain


def _named_sources(settings: DictConfig, root_dir: str) -> tuple[DictConfig, dict[str, Any]]:
    """A multi-source stage's data settings without ``source_overrides``, and its ``sources`` (data-config
    names) as the data configs themselves with those overrides set; a stage that reads ``data`` as is."""
    if "sources" not in settings:
        return settings, {}
    settings = copy.deepcopy(settings)
    with open_dict(settings):
        names = list(settings.pop("sources"))
        given = settings.pop("source_overrides", None)
    overrides = OmegaConf.to_container(given, resolve=True) if given is not None else {}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return settings, {"sources": source_configs(names, root_dir, overrides)}


def write_resolved_config(cfg: DictConfig, run_dir: Path) -> None:
    """``<run_dir>/config.yaml``: the app config resolved, without Hydra's own node."""
    resolved = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                for k, v in cfg.items() if k != "hydra"}  # fmt: skip
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))


def _trainer(cfg: DictConfig, resume_step: int) -> L.Trainer:
    """The trainer group's Trainer with the callbacks and loggers; ``progress=false``: without its bar.

    ``stage.trainer`` sets Trainer arguments a stage's recipe fixes (the segmentation expert's gradient
    clipping). A stage whose ranks train different heads (``stage.distributed.unused_parameters``, the
    experts)
    gets DDP's unused-parameter detection; ``sync_batchnorm`` is dropped on the CPU, where torch's
    ``SyncBatchNorm`` cannot run (BatchNorm statistics stay per process there, said in the log).
    """
    quiet = {} if cfg.get("progress", True) else {"enable_progress_bar": False}
    extra: dict[str, Any] = (
        dict(OmegaConf.to_container(cfg.stage.trainer)) if cfg.stage.get("trainer") else {}
    )
    strategy = cfg.trainer.get("strategy")
    distributed = cfg.stage.get("distributed") or {}
    if distributed.get("unused_parameters") and strategy in DDP_STRATEGIES:
        extra["strategy"] = f"{strategy}_find_unused_parameters_true"
    if cfg.trainer.get("sync_batchnorm") and cfg.trainer.get("accelerator") == "cpu":
        log.warning(
            "sync_batchnorm needs GPUs (torch's SyncBatchNorm refuses CPU tensors): "
            "BatchNorm stays per process"
        )
        extra["sync_batchnorm"] = False
    return instantiate(
        cfg.trainer, callbacks=_callbacks(cfg), logger=_loggers(cfg, resume_step) or False, **quiet, **extra
    )


DDP_STRATEGIES = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def _refuse_relaunch_in_sweep(trainer: L.Trainer) -> None:
    """Lightning starts the other local ranks of ``ddp`` and of the sharded strategy by running the
    command again; under ``--multirun`` that command is the whole sweep (Lightning #11300), so each
    rank would run every job. Refused in one line before any rank starts."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    launcher = trainer.strategy.launcher
    if (
        isinstance(launcher, _SubprocessScriptLauncher)
        and launcher.num_processes > 1
        and not launcher.cluster_environment.creates_processes_externally
    ):
        choice = HydraConfig.get().runtime.choices.get("trainer")
        raise StageConfigError(
            f"trainer={choice} under --multirun: Lightning starts ranks 1-{launcher.num_processes - 1} by "
            "running the command again, which here is the whole sweep; sweep with trainer=ddp_sim "
            "(spawned ranks) or launch each run on its own (torchrun, SLURM: trainer=multinode)"
        )


def _callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The callbacks group's, then the stage's own (its loss guard, its downstream probe)."""
    groups = (cfg.get("callbacks") or {}, cfg.stage.get("callbacks") or {})
    return [instantiate(c) for group in groups for c in group.values() if c is not None]


def _loggers(cfg: DictConfig, resume_step: int) -> list[Any]:
    """The logger group's loggers; those that can drop a resumed run's later steps are told where it
    resumes (``purge_step``: the steps from there on are logged again)."""
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if node is None:
            continue
        purges = issubclass(get_class(node._target_), (ResumableCSVLogger, TensorBoardLogger))
        loggers.append(instantiate(node, **({"purge_step": resume_step} if purges else {})))
    return loggers


def _given_resume(cfg: DictConfig) -> Path | None:
    """The checkpoint ``resume=`` names, checked before any set-up."""
    given = cfg.get("resume")
    if not given:
        return None
    path = Path(str(given)).expanduser()
    problem = checkpoint_problem(path)
    if problem is not None:
        raise StageConfigError(f"resume={given!r} is not a checkpoint that loads: {problem}")
    return path


def _step_of(ckpt: Path) -> int:
    """A checkpoint's ``global_step``, read without loading its tensors."""
    return int(checkpoint_meta(ckpt)["global_step"])


def _previous(path: Path) -> dict[str, Any]:
    """What an earlier attempt of the phase wrote to ``path`` (a JSON object), or nothing."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _data_counts(datamodule: L.LightningDataModule) -> dict[str, int]:
    """The training reader's samples seen, skipped as bad and padded (this rank, every epoch)."""
    position = datamodule.state_dict().get("reader")
    return ReaderPosition.from_state_dict(position).counts() if position else {}


def _evaluate(cfg: DictConfig, phase: Phase, parent: Path | None, name: str) -> None:
    """Benchmark a phase's export as ``cfg.evaluate`` asks, with the phase's own ``evaluate`` keys over it
    (an expert's tasks, its parent row); rank zero only, not under ``fast_dev_run``, nothing without tasks."""
    settings = OmegaConf.to_container(cfg.evaluate, resolve=True) if cfg.get("evaluate") else None
    if settings and phase.stage.get("evaluate"):
        settings = {**settings, **OmegaConf.to_container(phase.stage.evaluate, resolve=True)}
    run_dir = phase.run_dir
    export = run_dir / "export"
    if not settings or not settings.get("tasks") or getattr(rank_zero_only, "rank", 0) != 0:
        return
    if not (export / "config.json").is_file():
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
            stage=name,
            root_dir=cfg.paths.root_dir,
            parent=parent,
        )
    except EvaluationError as err:
        raise EvaluationError(
            f"{err}; the export {export} is complete (evaluate=null skips this step)"
        ) from err


def _progress(trainer: L.Trainer, run_dir: Path) -> dict[str, int]:
    """Steps and epochs done. Under ``ddp_spawn`` the main process's trainer never stepped: read them
    from the newest checkpoint then."""
    if trainer.global_step > 0:
        return {"steps": int(trainer.global_step), "epochs": int(trainer.current_epoch)}
    newest = newest_checkpoint(run_dir / "checkpoints")
    if newest is None:
        return {"steps": 0, "epochs": 0}
    meta = checkpoint_meta(newest)
    return {"steps": int(meta["global_step"]), "epochs": int(meta["epoch"])}


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
