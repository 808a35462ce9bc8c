"""Config values checked against the types of the callables they go to, before any heavy set-up.

Hydra instantiates ``_target_`` nodes without looking at types, so ``trainer.max_epochs=abc`` or
``stage.data.batch_size=abc`` would fail with a traceback after the data was made.
:func:`config_type_errors` reads every ``_target_``'s annotated parameters (``int``, ``float``, ``bool``,
``str`` and their ``| None``) and names each value that cannot be one; the apps run it before Hydra
starts the job.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterator
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = ["config_type_errors"]

SCALARS = (bool, int, float, str)


def config_type_errors(node: Any, path: str) -> list[str]:
    """One line per value under ``node`` (a config at ``path``) whose type its target does not take."""
    return [error for key, target, params in _targets(node, path) for error in _check(key, target, params)]


def _targets(node: Any, path: str) -> Iterator[tuple[str, Any, DictConfig]]:
    """``(path, callable, node)`` of every ``_target_`` node at or below ``node``."""
    if isinstance(node, DictConfig):
        target = _importable(node._target_) if "_target_" in node else None
        if target is not None:
            yield path, target, node
        for key in node:
            yield from _targets(node._get_node(key), f"{path}.{key}")
    elif isinstance(node, ListConfig):
        for index, item in enumerate(node):
            yield from _targets(item, f"{path}[{index}]")


def _importable(target: str) -> Any:
    """The object a ``_target_`` names, or None when it cannot be imported (the stage check names it)."""
    try:
        return get_object(target)
    except Exception:
        return None


def _check(path: str, target: Any, node: DictConfig) -> Iterator[str]:
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # hints naming what cannot be resolved here: nothing to check
        return
    for key in node:
        if key.startswith("_") or key not in hints or OmegaConf.is_missing(node, key):
            continue
        allowed = _scalar_types(hints[key])
        try:
            value = node[key]
        except OmegaConfBaseException:  # resolved only inside the job (${hydra:runtime.output_dir})
            continue
        if allowed and not _fits(value, allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            yield f"{path}.{key}={value!r} is not {names} (the {key} of {_name(target)})"


def _scalar_types(hint: Any) -> tuple[type, ...] | None:
    """The scalar types ``hint`` allows (``None`` included), or None when it is not only scalars."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if all(option in SCALARS or option is type(None) for option in options):
        return tuple(options)
    return None


def _fits(value: Any, allowed: tuple[type, ...]) -> bool:
    if value is None:
        return type(None) in allowed
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int):
        return int in allowed or float in allowed
    return isinstance(value, tuple(t for t in allowed if t is not bool))


def _name(target: Any) -> str:
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)}"
