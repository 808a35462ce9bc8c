"""A multi-source stage's sources: data configs (``conf/data/<name>.yaml``) named in ``stage.data.sources``,
resolved here (the app layer reads config files) into the plain dicts the stage's data builder takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from intern_app import config_dir
from intern_pretrain.core import StageConfigError

__all__ = ["source_configs"]


def source_configs(
    names: Sequence[str], root_dir: str | Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Each source's data config, resolved against ``root_dir`` (``${paths.root_dir}``) with
    ``overrides`` (e.g. ``sizes``, ``img_size``) applied to every one.

    Raises:
        StageConfigError: no source, a repeated or unknown name, or a config composed of others.
    """
    if not names:
        raise StageConfigError("stage.data.sources is empty: name at least one data config")
    if len(set(names)) != len(names):
        raise StageConfigError(f"stage.data.sources repeats a source: {list(names)}")
    folder = config_dir() / "data"
    known = sorted(p.stem for p in folder.glob("*.yaml"))
    configs = {}
    for name in names:
        path = folder / f"{name}.yaml"
        if not path.is_file():
            raise StageConfigError(
                f"stage.data.sources: unknown source {name!r} (data configs: {', '.join(known)})"
            )
        node = OmegaConf.load(path)
        if "defaults" in node:
            raise StageConfigError(
                f"stage.data.sources: {name!r} composes other configs; name a single source"
            )
        merged = OmegaConf.merge({"paths": {"root_dir": str(root_dir)}}, node, dict(overrides or {}))
        data = OmegaConf.to_container(merged, resolve=True)
        assert isinstance(data, dict)
        data.pop("paths")
        configs[name] = data
    return configs
