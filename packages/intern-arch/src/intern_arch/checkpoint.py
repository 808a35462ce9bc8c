"""Checkpoint hand-over between stages and to users: ``model.safetensors`` + ``config.json``, no pickle.

A hand-over folder holds the weights and a JSON config naming the architecture, the constructor
arguments, the stage that made it, the preprocessing (``pretrained_cfg``), label spaces and the
checkpoint it started from. Folders are written to a temporary sibling and renamed into place, so an
interrupted save never leaves a folder that looks complete.
"""

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1
# Where create_model / from_pretrained record a model's constructor arguments, for its hand-over config.
MODEL_ARGS_ATTR = "handover_args"


class CheckpointError(ValueError):
    """A hand-over folder or state dict that cannot be loaded as asked."""


def save_pretrained(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    model_args: dict[str, Any] | None = None,
    stage: str | None = None,
    label_spaces: dict[str, list[str]] | None = None,
    parent: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a hand-over folder (no parts: :func:`intern_arch.save_handover` adds them)
    and return its path.

    Args:
        model: a model built by ``intern_arch.create_model`` (it carries ``pretrained_cfg``).
        folder: destination; replaced atomically if it exists.
        model_args: constructor arguments beyond the architecture name (default: those ``create_model``
            or ``from_pretrained`` recorded on the model; ``num_classes`` is always kept).
        stage: the stage that produced the weights (``upa_g``, ``upe_c``, ...).
        label_spaces: class names of each head, by label-space name.
        parent: the hand-over folder these weights started from.
        extra: any further JSON-serialisable metadata.
    """
    config = backbone_config(
        model, model_args=model_args, stage=stage, label_spaces=label_spaces, parent=parent, extra=extra
    )
    with atomic_folder(folder) as tmp:
        write_backbone(tmp, model, config)
    return Path(folder)


def backbone_config(
    model: nn.Module,
    *,
    model_args: dict[str, Any] | None = None,
    stage: str | None = None,
    label_spaces: dict[str, list[str]] | None = None,
    parent: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``config.json`` of a hand-over folder holding ``model`` (see :func:`save_pretrained`)."""
    pretrained_cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    if "architecture" not in pretrained_cfg:
        raise CheckpointError(
            "model has no pretrained_cfg['architecture']; build it with intern_arch.create_model"
        )
    recorded = model_args if model_args is not None else getattr(model, MODEL_ARGS_ATTR, {})
    args = {**dict(recorded), "num_classes": getattr(model, "num_classes", 0)}
    return {
        "format_version": FORMAT_VERSION,
        "architecture": pretrained_cfg["architecture"],
        "model_args": args,
        "stage": stage,
        "pretrained_cfg": _jsonable(pretrained_cfg),
        "label_spaces": label_spaces or {},
        "parent": parent,
        **(extra or {}),
    }


def write_backbone(folder: Path, model: nn.Module, config: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (an atomic folder's temporary)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``folder`` to fill; it replaces ``folder`` only if the block succeeds
    (a failed write leaves the old folder, or none, never a half-written one)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield tmp
        _follow_umask(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _follow_umask(folder: Path) -> None:
    """Give a folder made by ``mkdtemp`` (0700) and its files the modes ``mkdir`` and ``open`` would have
    given them under the process's umask, so a team can read what a stage exports."""
    umask = os.umask(0)
    os.umask(umask)
    for path in (folder, *folder.rglob("*")):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a hand-over folder, with a clear error when it is missing or foreign."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a hand-over folder: {CONFIG_NAME} is missing")
    config = json.loads(path.read_text())
    for key in ("architecture", "model_args"):
        if key not in config:
            raise CheckpointError(f"{path} has no {key!r} key")
    return config


def from_pretrained(folder: str | os.PathLike, strict: bool = True, **overrides: Any) -> nn.Module:
    """Rebuild the model saved in ``folder`` and load its weights.

    ``overrides`` change constructor arguments. A different ``num_classes`` gives a freshly initialised
    classifier: the classifier's tensors are then the only ones allowed to be skipped.
    """
    config = read_config(folder)
    args = {**config["model_args"], **overrides}
    model = timm.create_model(config["architecture"], **args)
    setattr(model, MODEL_ARGS_ATTR, args)
    ignore: tuple[str, ...] = ()
    if args.get("num_classes") != config["model_args"].get("num_classes"):
        ignore = (model.pretrained_cfg["classifier"] + ".",)
    load_weights(model, Path(folder) / WEIGHTS_NAME, strict=strict, ignore_prefixes=ignore)
    return model


def load_weights(
    model: nn.Module,
    path: str | os.PathLike,
    strict: bool = True,
    ignore_prefixes: tuple[str, ...] = (),
) -> tuple[list[str], list[str]]:
    """Load a safetensors file into ``model``; return the missing and unexpected keys.

    Tensors whose names start with ``ignore_prefixes`` are skipped on both sides. A shape mismatch is
    always an error naming the tensor; with ``strict``, so are missing and unexpected keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    state = {k: v for k, v in read_safetensors(path).items() if not k.startswith(ignore_prefixes)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(ignore_prefixes)}
    for name, tensor in state.items():
        if name in own and own[name].shape != tensor.shape:
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, "
                f"model expects {tuple(own[name].shape)}"
            )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if strict and (missing or unexpected):
        raise CheckpointError(f"{path}: missing keys {missing}, unexpected keys {unexpected}")
    if missing or unexpected:
        log.warning("%s: missing keys %s, unexpected keys %s", path, missing, unexpected)
    with torch.no_grad():
        model.load_state_dict(state, strict=False)
    return missing, unexpected


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a file that is not one is a ``CheckpointError`` naming it."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
