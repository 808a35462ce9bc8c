"""A module's hyper-parameters as plain data: what a run's ``hparams.yaml`` and its checkpoints record.

Lightning's ``save_hyperparameters`` keeps every ``__init__`` argument, modules included (it only warns
about a module given directly, not one inside a mapping or a list), and writes them pickled into
``hparams.yaml`` and into every checkpoint: megabytes of ``!!python/object`` that ``yaml.safe_load``
refuses. Modules are saved as weights; their arguments are left out here.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any

import lightning as L
from torch import nn

__all__ = ["save_plain_hyperparameters"]


def save_plain_hyperparameters(module: L.LightningModule, *, ignore: Sequence[str] = ()) -> None:
    """``module.save_hyperparameters`` for the ``__init__`` that calls this (and the subclasses' that
    called it), less ``ignore`` and every argument that holds an ``nn.Module`` (one, or a mapping,
    list or tuple with one)."""
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    if caller is None:
        raise RuntimeError("save_plain_hyperparameters must be called from a module's __init__")
    module.save_hyperparameters(ignore=[*ignore, *_module_arguments(caller, module)], frame=caller)


def _module_arguments(frame: FrameType | None, module: L.LightningModule) -> list[str]:
    """Names of the arguments that hold modules in ``module``'s ``__init__`` frames, innermost first."""
    names = []
    while frame is not None and frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is module:
        names += [name for name, value in frame.f_locals.items() if name != "self" and _holds_module(value)]
        frame = frame.f_back
    return names


def _holds_module(value: Any) -> bool:
    if isinstance(value, nn.Module):
        return True
    if isinstance(value, Mapping):
        return any(isinstance(v, nn.Module) for v in value.values())
    if isinstance(value, list | tuple):
        return any(isinstance(v, nn.Module) for v in value)
    return False
