"""`python -m intern_pretrain stage=<stage> model=<model> [overrides]`: run one upstream stage."""

from omegaconf import DictConfig

from intern_app import AppError, describe, run_app

_ISSUE = {
    "upa": "Up-A",
    "upa_g": "Up-A",
    "upa_l": "Up-A",
    "upe_c": "Up-E",
    "upe_d": "Up-E",
    "upe_s": "Up-E",
    "upg": "Up-G",
}
IMPLEMENTED = ("upa", "upa_g", "upa_l")


def main(cfg: DictConfig) -> None:
    """Run the stage `cfg` composes."""
    stage = cfg.stage.name
    print(describe(cfg))
    print(f"stage {stage} (paper {cfg.stage.paper_section}): {cfg.stage.description}")
    if stage not in IMPLEMENTED:
        issue = _ISSUE.get(stage, "its")
        raise AppError(f"stage '{stage}' is not implemented yet; it arrives with the {issue} issue")
    from intern_data.readers import ReaderError
    from intern_data.shards import ShardWriteError, SkipRateError
    from intern_data.sources import DataConfigError
    from intern_pretrain.stages.runner import RunError, run_stage

    try:
        run_stage(cfg)
    except (RunError, DataConfigError, ReaderError, ShardWriteError, SkipRateError) as err:
        raise AppError(str(err)) from err


if __name__ == "__main__":
    run_app("pretrain", main, prog="intern_pretrain")
