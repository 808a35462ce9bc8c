"""Writing and reading a whole hand-over folder: the backbone and its named parts.

Layout (``format_version`` 2; version 1 folders, with no parts, read the same)::

    config.json            architecture, model_args, stage, pretrained_cfg, label_spaces, parent,
                           parts: {name: {"kind": kind, "path": name}}
    model.safetensors      the backbone
    <name>/config.json     {"kind": kind, "args": {...}}: what rebuilds the part (intern_arch.handover.parts)
    <name>/model.safetensors   the part's own tensors (never the backbone's again)
    <name>/...             files of its kind (text/tokenizer.json)

Part names are paths: ``neck``, ``text``, ``heads/<name>`` (one per head: ``heads/box`` for Up-A-L's
box head, one per source dataset for an expert).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor, nn

from ..checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    atomic_folder,
    backbone_config,
    from_pretrained,
    read_config,
    read_safetensors,
    write_backbone,
)
from .legacy import legacy_parts
from .parts import PART_KINDS, missing_requirements

__all__ = ["HANDOVER_VERSION", "Handover", "PartSpec", "load_handover", "save_handover"]

log = logging.getLogger(__name__)

HANDOVER_VERSION = 2


@dataclass(frozen=True)
class PartSpec:
    """A part as found on disk: its kind, its args, its tensors' file and its folder (for extra files)."""

    name: str
    kind: str
    args: dict[str, Any]
    weights: Path
    folder: Path
    key_prefix: str = ""  # the part's tensors in the file are those with this prefix (removed) ...
    module_prefix: str = ""  # ... and this one in the module's state dict


@dataclass
class Handover:
    """A loaded hand-over folder.

    Attributes:
        folder: where it was read from.
        config: its ``config.json``.
        backbone: the backbone, weights loaded, in eval mode.
        parts: each loaded part by name (``neck``, ``text``, ``heads/box``, ...), built around ``backbone``.
        unavailable: parts left out, with the reason (an optional dependency not installed).
    """

    folder: Path
    config: dict[str, Any]
    backbone: nn.Module
    parts: dict[str, nn.Module]
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def neck(self) -> nn.Module | None:
        return self.parts.get("neck")

    @property
    def heads(self) -> dict[str, nn.Module]:
        """The ``heads/<name>`` parts by ``<name>``."""
        return {name.removeprefix("heads/"): m for name, m in self.parts.items() if name.startswith("heads/")}

    @property
    def text(self) -> nn.Module | None:
        return self.parts.get("text")


def save_handover(
    folder: str | os.PathLike,
    backbone: nn.Module,
    parts: Mapping[str, nn.Module] | None = None,
    **meta: Any,
) -> Path:
    """Write ``backbone`` and ``parts`` as one hand-over folder, atomically; returns its path.

    Args:
        folder: destination; replaced atomically if it exists.
        backbone: a model built by ``intern_arch.create_model`` or ``from_pretrained``.
        parts: modules by part name; each has a ``handover_kind`` and ``args`` (see :mod:`.parts`).
        **meta: ``stage``, ``parent``, ``label_spaces``, ``model_args``, ``extra``, as
            :func:`intern_arch.save_pretrained` takes them.
    """
    parts = dict(parts or {})
    config = backbone_config(backbone, **meta)
    config["format_version"] = HANDOVER_VERSION
    config["parts"] = {name: {"kind": _kind(name, part), "path": name} for name, part in parts.items()}
    storage = _storage(backbone)
    with atomic_folder(folder) as tmp:
        write_backbone(tmp, backbone, config)
        for name, part in parts.items():
            target = tmp / name
            target.mkdir(parents=True)
            state = {k: v.detach().contiguous().cpu() for k, v in _own_state(part, storage).items()}
            save_file(state, str(target / WEIGHTS_NAME), metadata={"format": "pt"})
            part_config = {"kind": part.handover_kind, "args": part.args}
            (target / CONFIG_NAME).write_text(json.dumps(part_config, indent=2, sort_keys=True))
            save_files = PART_KINDS[part.handover_kind].save_files
            if save_files is not None:
                save_files(part, target)
    return Path(folder)


def load_handover(folder: str | os.PathLike, parts: Iterable[str] | None = None) -> Handover:
    """Read a hand-over folder: the backbone and the parts it holds (all of them, or the named ones).

    A part whose kind needs an optional dependency that is missing is left out, with the reason in
    ``unavailable``, when ``parts`` is None; named explicitly, it is an error naming the extra.

    Raises:
        CheckpointError: no hand-over folder, a named part it does not hold, a missing dependency of a
            named part, or tensors that do not fit.
    """
    folder = Path(folder)
    config = read_config(folder)
    backbone = from_pretrained(folder).eval()
    specs = {spec.name: spec for spec in _part_specs(folder, config)}
    wanted = list(specs) if parts is None else list(parts)
    unknown = [name for name in wanted if name not in specs]
    if unknown:
        raise CheckpointError(f"{folder} holds no part {unknown} (it holds: {', '.join(specs) or 'none'})")
    loaded, unavailable = {}, {}
    for name in wanted:
        spec = specs[name]
        kind = PART_KINDS[spec.kind]
        missing = missing_requirements(kind)
        if missing:
            reason = f"needs {', '.join(missing)}: pip install 'intern-arch[{kind.extra}]'"
            if parts is not None:
                raise CheckpointError(f"{folder}: part {name!r} {reason}")
            log.warning("%s: part %r left out (%s)", folder, name, reason)
            unavailable[name] = reason
            continue
        loaded[name] = _load_part(spec, backbone)
    return Handover(folder, config, backbone, loaded, unavailable)


def _storage(backbone: nn.Module) -> set[int]:
    return {t.data_ptr() for t in backbone.state_dict().values()}


def _own_state(part: nn.Module, backbone_storage: set[int]) -> dict[str, Tensor]:
    """A part's state dict without the backbone's tensors (a neck holds the backbone it wraps)."""
    return {k: v for k, v in part.state_dict().items() if v.data_ptr() not in backbone_storage}


def _kind(name: str, part: nn.Module) -> str:
    kind = getattr(part, "handover_kind", None)
    if kind not in PART_KINDS:
        raise CheckpointError(f"part {name!r} ({type(part).__name__}) has no known handover_kind: {kind!r}")
    return kind


def _part_specs(folder: Path, config: Mapping[str, Any]) -> list[PartSpec]:
    """The parts of a folder: listed in its config (version 2) or in an older layout's own files."""
    specs = []
    for name, entry in (config.get("parts") or {}).items():
        part_folder = folder / entry["path"]
        part_config = json.loads((part_folder / CONFIG_NAME).read_text())
        if part_config.get("kind") not in PART_KINDS:
            raise CheckpointError(
                f"{part_folder / CONFIG_NAME}: unknown part kind {part_config.get('kind')!r}"
            )
        specs.append(
            PartSpec(name, part_config["kind"], part_config["args"], part_folder / WEIGHTS_NAME, part_folder)
        )
    return specs or [PartSpec(**spec) for spec in legacy_parts(folder, config)]


def _load_part(spec: PartSpec, backbone: nn.Module) -> nn.Module:
    module = PART_KINDS[spec.kind].build(spec.args, backbone, spec.folder)
    state: dict[str, Tensor] = {
        spec.module_prefix + key.removeprefix(spec.key_prefix): tensor
        for key, tensor in read_safetensors(spec.weights).items()
        if key.startswith(spec.key_prefix)
    }
    expected = _own_state(module, _storage(backbone))
    wrong = sorted(k for k in state if k not in expected or expected[k].shape != state[k].shape)
    missing = sorted(set(expected) - set(state))
    if wrong or missing:
        raise CheckpointError(
            f"{spec.weights}: part {spec.name!r} has tensors that do not fit {wrong} and misses {missing}"
        )
    module.load_state_dict(state, strict=False)
    return module.eval()
