"""``python -m intern_bench``: ``list`` / ``report`` tools, else the Hydra app (one cell, or a suite).

python -m intern_bench checkpoint=<export> task=gvb_world_det split=10pct
python -m intern_bench backbone=efficientnet_lite0 suite=real_small splits=[10pct,100pct]
python -m intern_bench task=gvb_world_cls precision=bf16 logger=tensorboard trainer=gpu
python -m intern_bench backbone=pixels task=gvb_world_fine splits=[10pct] split_seeds=[0,1,2] protocol=fast

The app builds each cell's Trainer from the ``trainer`` (with ``precision``), ``logger`` and
``callbacks`` groups and hands the library a factory of them (intern-transfer's ``trainer_factory``).
Importing it registers the resolver that names the run folder after the model measured
(:mod:`intern_bench.run_name`); the banner names it too, and the run's cost is printed before the first cell.
"""

from pathlib import Path

from hydra.errors import InstantiationException
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from intern_app import AppError, Verbs, config_dir, describe, run_app
from intern_bench.report import NoResultsError, render_report
from intern_bench.run_name import RESOLVER, measured_model
from intern_bench.runner import describe_model, run_bench
from intern_data.progress import set_progress
from intern_data.readers import ReaderError
from intern_data.regimes import MissingTaskDataError
from intern_data.splits import SplitMismatchError
from intern_data.tasks import TaskConfigError, UnknownSuiteError, UnknownTaskError, load_tasks
from intern_transfer.app.trainers import trainer_factory
from intern_transfer.backbones import BackboneSpecError

OmegaConf.register_new_resolver(RESOLVER, measured_model, replace=True)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).strip("'\"").split())


def main(cfg: DictConfig) -> None:
    """Evaluate the backbone `cfg` names on its task (or suite) and render the report in the run folder."""
    print(describe(cfg, leave_out=("model",) if cfg.checkpoint or cfg.backbone else ()))
    print(describe_model(cfg))
    if not cfg.progress:
        set_progress(False)
    out_dir = Path(cfg.paths.output_dir)
    plain = {key: OmegaConf.select(cfg, key) for key in cfg if key != "hydra"}  # Hydra's own part unresolved
    plain = {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in plain.items()
    }
    try:
        registry = load_tasks(config_dir() / "task") if plain.get("suite") else None
        results = run_bench(plain, out_dir, trainer_factory(cfg), registry, announce=print)
        written = render_report(out_dir, out_dir / "report")
    except (
        BackboneSpecError,
        MissingTaskDataError,
        UnknownSuiteError,
        UnknownTaskError,
        TaskConfigError,
        ReaderError,
        SplitMismatchError,
        NoResultsError,
        ValueError,
        InstantiationException,
    ) as err:
        raise AppError(_one_line(err)) from err
    except MisconfigurationException as err:  # Lightning refusing the trainer, logger or callbacks groups
        raise AppError(f"trainer: {_one_line(err)}") from err
    several = len({result.split_seed for result in results}) > 1
    for result in results:
        split = f"{result.split} seed {result.split_seed}" if several else result.split
        print(f"{result.model} | {result.task} | {split} | {result.primary_metric} {result.value:.2f}")
    print(f"report: {written[0].parent}")


if __name__ == "__main__":
    from intern_bench.cli import VERB_HELP
    from intern_bench.cli import main as run_verb

    moved = {"accelerator": "choose trainer=cpu|gpu or trainer.accelerator"}
    verbs = Verbs(lambda argv: run_verb(argv, config_dir() / "task"), VERB_HELP)
    run_app("bench", main, prog="intern_bench", verbs=verbs, moved=moved)
