"""Running the intern_pretrain app in this process, on tiny settings and the session's world cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# Up-A-G in a few steps at 32 px: 3 steps of 8 per epoch, a small world, a small probe task.
UPA_G_TINY = [
    "stage=upa_g",
    "data.sizes={train:48,val:16}",
    "stage.data.img_size=32",
    "stage.data.batch_size=8",
    "stage.data.val_batch_size=16",
    "stage.data.samples_per_epoch=24",
    "stage.module.scheduler.warmup_steps=2",
    "stage.callbacks.probe.sizes={train:36,val:18}",
    "trainer.log_every_n_steps=1",
    "evaluate=null",
]


@pytest.fixture
def run_pretrain(intern_root: Path) -> Iterator[Callable[..., Any]]:
    """``run_pretrain(run_dir, *overrides)``: compose the pretrain app's config as Hydra would for
    ``hydra.run.dir=run_dir`` and run the stage in this process; returns the config."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from intern_app import config_dir
    from intern_pretrain.app.run import run_stage

    def run(run_dir: Path, *overrides: str, tiny: Sequence[str] = UPA_G_TINY) -> Any:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(
                "pretrain",
                overrides=[
                    *tiny,
                    *overrides,
                    f"paths.root_dir={intern_root}",
                    f"hydra.runtime.output_dir={run_dir}",
                ],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        run_stage(cfg)
        return cfg

    yield run
    HydraConfig.instance().cfg = None
