"""An adapted model as a hand-over folder: the backbone and the task's layers as named parts.

The parts are intern-arch's, so ``intern_arch.load_handover`` alone rebuilds them: classification's
``heads/<task>`` (kind ``linear``), segmentation's ``heads/<task>`` (``aspp_head``: DeepLabV3's fusion
and ASPP), detection's ``neck`` (``fpn``) and ``heads/<task>`` (``faster_rcnn_head``: RPN head, box head
and box predictor). ``config.json`` records the parent hand-over (or backbone name) and the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from intern_arch.handover import save_handover
from intern_arch.heads import ASPPHead, DetectorHead, LinearHead
from intern_transfer.adapt import AdaptModule

__all__ = ["export_adapted"]


def _task_parts(adapter: AdaptModule, task_type: str, name: str) -> dict[str, nn.Module]:
    model = adapter.model
    if task_type == "classification":
        head = LinearHead(model.fc.in_features, model.fc.out_features)
        head.load_state_dict(model.fc.state_dict())
        return {f"heads/{name}": head}
    if task_type == "segmentation":
        rates = [module.convs[0].dilation[0] for module in model.head[0].convs[1:-1]]
        fuse_channels = model.fuse[0].out_channels
        aspp = ASPPHead(model.body.out_channels, model.head[-1].out_channels, fuse_channels, rates)
        aspp.load_state_dict({**_prefixed(model.fuse, "fuse"), **_prefixed(model.head, "head")})
        return {f"heads/{name}": aspp}
    box_head = model.roi_heads.box_head
    detector = DetectorHead(
        model.backbone.out_channels,
        model.roi_heads.box_predictor.cls_score.out_features,
        model.rpn.head.cls_logits.out_channels,
        **{key: box_head.args[key] for key in ("resolution", "conv_dim", "num_convs", "fc_dim")},
    )
    detector.rpn_head.load_state_dict(model.rpn.head.state_dict())
    detector.box_head.load_state_dict(box_head.state_dict())
    detector.box_predictor.load_state_dict(model.roi_heads.box_predictor.state_dict())
    return {"neck": model.backbone, f"heads/{name}": detector}


def _prefixed(module: nn.Module, prefix: str) -> dict[str, Any]:
    return {f"{prefix}.{key}": value for key, value in module.state_dict().items()}


def export_adapted(
    adapter: AdaptModule, task_type: str, task: str, folder: Path, *, parent: str, extra: Mapping[str, Any]
) -> Path:
    """Write ``adapter``'s backbone and task layers to ``folder`` (atomically)."""
    parts = _task_parts(adapter, task_type, task)
    return save_handover(folder, adapter.backbone, parts, stage="down_a", parent=parent, extra=dict(extra))
