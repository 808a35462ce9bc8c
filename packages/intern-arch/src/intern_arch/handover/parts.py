"""The kinds of parts a hand-over folder can hold beside its backbone, and how each is rebuilt.

A part is an ``nn.Module`` with a class attribute ``handover_kind`` (a key of :data:`PART_KINDS`) and
an ``args`` dict of JSON values from which its kind rebuilds it; a part built around the backbone (an
FPN) finds it passed in. A kind whose module needs an optional dependency names it in ``requires``
(the text tower needs ``intern-arch[text]``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..heads.classifier import LinearHead
from ..heads.detection import BoxHead, DetectorHead
from ..heads.segmentation import ASPPHead
from ..necks import FPN

__all__ = ["PART_KINDS", "PartKind", "missing_requirements"]


@dataclass(frozen=True)
class PartKind:
    """How a part of one kind is rebuilt from its ``args``.

    Attributes:
        build: ``(args, backbone, part folder) -> module`` (weights are loaded afterwards).
        requires: importable modules the kind needs, with the extra that installs them.
        save_files: writes files beside the weights (a tokenizer), or None.
    """

    build: Callable[[Mapping[str, Any], nn.Module, Path], nn.Module]
    requires: tuple[str, ...] = ()
    extra: str | None = None
    save_files: Callable[[nn.Module, Path], None] | None = None


def _build_text(args: Mapping[str, Any], backbone: nn.Module, folder: Path) -> nn.Module:
    from ..text import TextSide

    return TextSide.from_args(args, folder)


def _save_text(module: nn.Module, folder: Path) -> None:
    module.tokenizer.save(folder)


PART_KINDS: dict[str, PartKind] = {
    "fpn": PartKind(lambda args, backbone, folder: FPN(backbone, **args)),
    "box_head": PartKind(lambda args, backbone, folder: BoxHead(**args)),
    "linear": PartKind(lambda args, backbone, folder: LinearHead(**args)),
    "aspp_head": PartKind(lambda args, backbone, folder: ASPPHead(**args)),
    "faster_rcnn_head": PartKind(lambda args, backbone, folder: DetectorHead(**args)),
    "text": PartKind(_build_text, ("transformers", "tokenizers"), "text", _save_text),
}


def missing_requirements(kind: PartKind) -> list[str]:
    """The modules ``kind`` needs that are not installed."""
    return [name for name in kind.requires if importlib.util.find_spec(name) is None]
