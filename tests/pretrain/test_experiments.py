"""Every ``experiment=*`` of the pretrain app composes and runs one batch (``debug=fdr``) on the CPU at a
tiny size, so an experiment cannot rot unnoticed. GPU experiments run with ``trainer=cpu``. Autograd's
anomaly mode (``debug``'s default) is off: it records every operation's stack, a third of the time here,
and these runs check that the configs compose and train, not where a NaN comes from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from intern_app import config_dir

pytestmark = pytest.mark.usefixtures("one_thread")
EXPERIMENTS = sorted(path.stem for path in (config_dir() / "experiment").glob("*.yaml"))


def cpu_overrides(experiment: str) -> list[str]:
    """Overrides that shrink the experiment's stage (each phase of a stage of phases) to a few images."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        stage: DictConfig = compose("pretrain", [f"experiment={experiment}"]).stage
    phases = [f"{name}." for name in stage.get("phases") or []] or [""]
    overrides = ["trainer=cpu", "model.img_size=32", "data.sizes={train:32,val:16}", "evaluate=null"]
    if stage.get("init_from") is not None:
        overrides.append("stage.init_from=null")  # no earlier run here: start from a random backbone
    for phase in phases:
        data = stage[phase[:-1]].data if phase else stage.data
        module = stage[phase[:-1]].module if phase else stage.module
        if "sources" in data:  # an expert: a sub-batch of 2 per source, each source a few images
            overrides += [f"stage.{phase}data.batch_size={2 * len(data.sources)}"]
            overrides += [f"stage.{phase}data.source_overrides.sizes={{train:16,val:8}}"]
        else:
            overrides += [f"stage.{phase}data.batch_size=4", f"stage.{phase}data.samples_per_epoch=8"]
        if data.get("num_workers"):  # a GPU recipe's workers: each a new interpreter, for a batch or two
            overrides.append(f"stage.{phase}data.num_workers=0")
        if module.get("fpn_channels"):  # a GPU recipe's detection neck and box head, at a CPU size
            overrides.append(f"stage.{phase}module.fpn_channels=32")
        if module.get("box_head"):
            overrides.append(f"stage.{phase}module.box_head={{conv_dim:32,num_convs:1,fc_dim:64}}")
        if module.get("init_heads"):
            overrides.append(f"stage.{phase}module.init_heads=false")
        if phase and stage[phase[:-1]].get("init_from") is not None:
            overrides.append(f"stage.{phase}init_from=null")
        if "views" in data:
            overrides += [f"stage.{phase}data.views.size=32", f"stage.{phase}data.views.view3_size=32"]
        callbacks = (stage[phase[:-1]] if phase else stage).get("callbacks") or {}
        if callbacks.get("probe"):
            overrides.append(f"stage.{phase}callbacks.probe.sizes={{train:36,val:18}}")
    return overrides


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_one_batch(run_pretrain: Callable[..., Any], tmp_path: Path, experiment: str) -> None:
    cfg = run_pretrain(
        tmp_path / "run",
        f"experiment={experiment}",
        "debug=fdr",
        "trainer.detect_anomaly=false",
        *cpu_overrides(experiment),
        tiny=(),
    )
    assert cfg.trainer.fast_dev_run
    assert (tmp_path / "run" / "export" / "config.json").is_file()
    assert (tmp_path / "run" / "summary.json").is_file()
