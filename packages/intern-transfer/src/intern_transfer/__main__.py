"""``python -m intern_transfer method=<lp|ft|mf> task=<task> split=<rule> init_from=<hand-over>``: adapt a
backbone to a task and export the adapted model.

The method runs on the task's training regime (validation carved out of it), is tested once on the
task's test split, and the chosen model is written as a hand-over folder ``<run>/export`` (backbone and
task layers as intern-arch parts) beside ``result.json`` (test metrics, the chosen setting of each
stage, every grid point, MF's FD scores and VQ-GAN). A killed run resumes where it stopped when rerun
with ``hydra.run.dir=<its folder>``.
"""

import json
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from intern_app import AppError, describe, run_app
from intern_data.io import atomic_write_text
from intern_data.progress import set_progress
from intern_data.readers import ReaderError
from intern_data.regimes import MissingTaskDataError, task_shards
from intern_data.splits import SplitMismatchError
from intern_data.tasks import TaskConfigError, task_from_config
from intern_transfer.app.trainers import trainer_factory
from intern_transfer.backbones import BackboneSpecError, load_backbone
from intern_transfer.downa import METHODS, adapt_to_task, default_metric, export_adapted, transfer_task

ALIASES = {"probe": "lp", "finetune": "ft", "down_a": "mf"}
"""The method names before Down-A, kept working."""


def method_name(name: str) -> str:
    """``name`` or the method its older name stands for; one line naming the choices otherwise."""
    method = ALIASES.get(name, name)
    if method not in METHODS:
        known = ", ".join([*METHODS, *(f"{old} (= {new})" for old, new in ALIASES.items())])
        raise AppError(f"unknown method '{name}' (choose from: {known})")
    return method


def _plain(cfg: DictConfig) -> dict[str, Any]:
    return {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("task", "downa")}


def main(cfg: DictConfig) -> None:
    """Adapt the backbone `cfg` names to its task with its method; export the adapted model."""
    method = method_name(cfg.method)
    print(describe(cfg, leave_out=("model",) if cfg.init_from else ()))
    if not cfg.progress:
        set_progress(False)
    out = Path(cfg.paths.output_dir)
    plain = _plain(cfg)
    source = str(cfg.init_from or cfg.model.backbone.model_name)
    try:
        spec = task_from_config(plain["task"])
        loaded = load_backbone(source, weights=cfg.weights)
        root = task_shards(spec, data_root=cfg.data_root, cache_dir=cfg.cache_dir)
        task = transfer_task(
            spec, loaded.input_size, default_metric(spec.type, int(spec.num_classes or 0)),
            plain["downa"]["detector_kwargs"],
        )  # fmt: skip
        print(f"method {method} from {source}, task {spec.name}, split {cfg.split}, seed {cfg.seed}")
        adapted = adapt_to_task(
            plain["downa"], method, task, root, spec, rule=cfg.split, seed=int(cfg.seed),
            backbone=loaded.backbone, backbone_id=loaded.fingerprint, cache_dir=Path(cfg.cache_dir),
            run_dir=out, make_trainer=trainer_factory(cfg),
        )  # fmt: skip
    except (
        BackboneSpecError, MissingTaskDataError, TaskConfigError, ReaderError, SplitMismatchError,
        ValueError, InstantiationException,
    ) as err:  # fmt: skip
        raise AppError(" ".join(str(err).strip("'\"").split())) from err
    except MisconfigurationException as err:
        raise AppError(f"trainer: {' '.join(str(err).split())}") from err
    outcome = adapted.outcome
    record = {
        "method": method, "task": spec.name, "split": cfg.split, "seed": int(cfg.seed), "init_from": source,
        "test": outcome.test, "num_train": adapted.num_train, "num_val": adapted.num_val,
        "chosen": {stage: vars(point) for stage, point in outcome.chosen.items()},
        "points": [vars(point) for point in outcome.points], "fd": adapted.fd, "vqgan": adapted.vqgan,
    }  # fmt: skip
    export = export_adapted(outcome.module, spec.type, spec.name, out / "export", parent=source, extra=record)
    atomic_write_text(out / "result.json", json.dumps(record, indent=1) + "\n")
    for key, value in sorted(outcome.test.items()):
        print(f"test {key} {value:.4f}")
    for key, value in adapted.fd.items():
        print(f"{key} {value:.2f}")
    print(f"export: {export}")


if __name__ == "__main__":
    run_app("transfer", main, prog="intern_transfer")
