"""A searched network as a named model config (``conf/model/<name>.yaml``), the form every app reads.

The config builds the registered ``metanet`` architecture with the stage list as its ``arch``
argument, so the model's hand-over folder records the stage list and rebuilds with intern-arch alone.
``python -m intern_arch install <family member .json> --name <name>`` writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..models.metanet import MetaNetCfg, metanet_cfg_from_dict

__all__ = ["install_model_config", "model_config"]


def model_config(name: str, cfg: MetaNetCfg, img_size: int, drop_path_rate: float = 0.0) -> str:
    """The YAML text of a ``conf/model`` config for ``cfg``."""
    config = {
        "name": name,
        "backbone": {
            "_target_": "intern_arch.create_model",
            "_convert_": "all",
            "model_name": "metanet",
            "drop_path_rate": drop_path_rate,
            "arch": cfg.as_dict(),
        },
        "img_size": img_size,
        "source": cfg.source,
    }
    # JSON is YAML (flow style): Hydra reads it, and intern-arch needs no YAML library to write it.
    header = f"# {name}: a searched MetaNet (python -m intern_pretrain stage=search)"
    return f"{header}\n{json.dumps(config, indent=2)}\n"


def install_model_config(member: str | Path, name: str, conf_dir: str | Path, force: bool = False) -> Path:
    """Write family member ``member`` (a ``family/<name>.json`` of a search run) as
    ``<conf_dir>/<name>.yaml``; refuses to replace an existing config unless ``force``."""
    record = json.loads(Path(member).read_text())
    if "stages" not in record or "img_size" not in record:
        raise ValueError(f"{member} is not a search family member (no 'stages' / 'img_size')")
    target = Path(conf_dir) / f"{name}.yaml"
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; choose another --name or pass --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(model_config(name, metanet_cfg_from_dict(record["stages"]), record["img_size"]))
    return target
