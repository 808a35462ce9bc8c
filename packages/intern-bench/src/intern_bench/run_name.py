"""The model a bench run measures, as its run folder and banner name it (``bench_model`` in bench.yaml).

``hydra.run.dir`` is ``runs/bench/<task>/${bench_model:${checkpoint},${backbone},${model.name}}/...``:
the hand-over's ``<architecture>-<stage>`` (its folder's name when it has no readable config), else the
``backbone`` spec, else the ``model`` config's name, never a default the run does not use. The app
(:mod:`intern_bench.__main__`) registers :func:`measured_model` as that resolver.
"""

from __future__ import annotations

import re
from pathlib import Path

RESOLVER = "bench_model"
"""The resolver's name in ``hydra.run.dir`` of bench.yaml."""


def handover_name(folder: str | Path) -> str:
    """``<architecture>-<stage>`` from a hand-over's ``config.json`` (the architecture alone without a
    stage); the folder's name when it holds no readable config (loading it then says why)."""
    from intern_arch.checkpoint import CheckpointError, read_config

    try:
        config = read_config(folder)
    except (CheckpointError, OSError, ValueError):
        return Path(folder).name
    stage = config.get("stage")
    return f"{config['architecture']}-{stage}" if stage else str(config["architecture"])


def measured_model(checkpoint: str | None, backbone: str | None, model_name: str) -> str:
    """The model measured as a folder name: :func:`handover_name` of ``checkpoint``, else ``backbone``
    (``timm:resnet18`` -> ``timm_resnet18``), else ``model_name``."""
    name = handover_name(checkpoint) if checkpoint else backbone or model_name
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(name)).strip("_") or "model"
