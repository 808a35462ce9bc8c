"""``python -m intern_bench``: ``list`` / ``report`` tools, else the Hydra app (one cell, or a suite).

python -m intern_bench checkpoint=<export> task=gvb_world_det split=10pct
python -m intern_bench backbone=efficientnet_lite0 suite=real_small splits=[10pct,100pct]
"""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from intern_app import AppError, Verbs, describe, run_app
from intern_bench.report import NoResultsError, render_report
from intern_bench.runner import run_bench
from intern_bench.task_data import MissingTaskDataError
from intern_bench.tasks import UnknownSuiteError, UnknownTaskError
from intern_data.readers import ReaderError
from intern_data.splits import SplitMismatchError
from intern_transfer.backbones import BackboneSpecError


def main(cfg: DictConfig) -> None:
    """Evaluate the backbone `cfg` names on its task (or suite) and render the report in the run folder."""
    print(describe(cfg))
    out_dir = Path(cfg.paths.output_dir)
    plain = {key: OmegaConf.select(cfg, key) for key in cfg if key != "hydra"}  # Hydra's own part unresolved
    plain = {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in plain.items()
    }
    try:
        results = run_bench(plain, out_dir)
        written = render_report(out_dir, out_dir / "report")
    except (
        BackboneSpecError,
        MissingTaskDataError,
        UnknownSuiteError,
        UnknownTaskError,
        ReaderError,
        SplitMismatchError,
        NoResultsError,
        ValueError,
    ) as err:
        raise AppError(str(err).strip("'\"")) from err
    for result in results:
        print(f"{result.model} | {result.task} | {result.split} | {result.primary_metric} {result.value:.2f}")
    print(f"report: {written[0].parent}")


if __name__ == "__main__":
    from intern_bench.cli import VERB_HELP
    from intern_bench.cli import main as run_verb

    run_app("bench", main, prog="intern_bench", verbs=Verbs(run_verb, VERB_HELP))
