"""The upstream stages, by name: each a module with ``build(cfg, init_from)`` and ``export(module, folder)``.

``build(cfg, init_from) -> (LightningModule, LightningDataModule)`` takes the composed app config
(``cfg.stage`` the stage's own settings, ``cfg.paths.output_dir`` its run folder) and the hand-over
folder it starts from (or None); ``export(module, folder)`` writes the stage's hand-over folder.
Stage modules are imported on lookup, so a stage whose module does not exist yet fails alone.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

__all__ = ["STAGES", "StageConfigError", "StageUnavailable", "get_stage", "instantiate", "to_plain"]

STAGES: dict[str, str] = {
    "upa_g": "intern_pretrain.stages.upa_g",
    "upa_l": "intern_pretrain.stages.upa_l",
}


class StageConfigError(ValueError):
    """A stage config that cannot run; the message names the field."""


class StageUnavailable(LookupError):
    """A stage with no implementation (yet)."""


def get_stage(name: str) -> ModuleType:
    """The module implementing stage ``name`` (imported now).

    Raises:
        StageUnavailable: no stage of that name, or its module is missing.
    """
    if name not in STAGES:
        raise StageUnavailable(f"unknown stage {name!r}; implemented: {', '.join(STAGES)}")
    path = STAGES[name]
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as err:
        if err.name != path:
            raise
        raise StageUnavailable(f"stage {name!r} is not available: its module {path} is missing") from None
    for attr in ("build", "export"):
        if not callable(getattr(module, attr, None)):
            raise StageUnavailable(f"stage {name!r}: {path} has no {attr}()")
    return module


def to_plain(node: Any) -> Any:
    """A config node (an OmegaConf ``DictConfig``/``ListConfig`` or plain data) as plain dicts and lists,
    interpolations resolved (reading a config node resolves it; no Hydra import needed here)."""
    if isinstance(node, Mapping):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, Sequence) and not isinstance(node, str | bytes):
        return [to_plain(v) for v in node]
    return node


def _locate(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise StageConfigError(f"_target_ {path!r} cannot be imported ({err})") from None


def instantiate(spec: Any, **kwargs: Any) -> Any:
    """Build the object a ``_target_`` config describes, as ``hydra.utils.instantiate`` does for the
    flat configs of the app (nested ``_target_`` nodes are built first; ``_partial_: true`` gives a
    ``functools.partial``); ``kwargs`` override the config's arguments."""
    spec = to_plain(spec)
    if isinstance(spec, list):
        return [instantiate(v) for v in spec]
    if not isinstance(spec, dict):
        return spec
    if "_target_" not in spec:
        return {k: instantiate(v) for k, v in spec.items()}
    args = {k: instantiate(v) for k, v in spec.items() if not (k.startswith("_") and k.endswith("_"))}
    args.update(kwargs)
    target = _locate(spec["_target_"])
    return functools.partial(target, **args) if spec.get("_partial_") else target(**args)
