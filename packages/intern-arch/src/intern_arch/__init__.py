"""intern-arch: the GV-A model family (MetaNet, R50), necks, heads and checkpoints of INTERN."""

import timm
from torch import nn

from .checkpoint import CheckpointError, from_pretrained, load_weights, save_pretrained
from .heads import (
    DeepLabV3,
    DepthDecoder,
    DepthModel,
    LinearClassifier,
    build_face_detector,
    build_faster_rcnn,
    segmentation_loss,
    silog_loss,
)
from .models import MetaNet, MetaNetCfg, PyramidResNet, StageCfg, list_models, metanet_cfgs
from .necks import FPN, PyramidAdapter

__version__ = "0.1.0"


def create_model(model_name: str, **kwargs) -> nn.Module:
    """Build a model by name: INTERN's own (``list_models()``) or any timm architecture."""
    if not timm.is_model(model_name):
        raise ValueError(f"unknown model {model_name!r}; intern-arch provides {', '.join(list_models())}")
    return timm.create_model(model_name, **kwargs)


__all__ = [
    "FPN",
    "CheckpointError",
    "DeepLabV3",
    "DepthDecoder",
    "DepthModel",
    "LinearClassifier",
    "MetaNet",
    "MetaNetCfg",
    "PyramidAdapter",
    "PyramidResNet",
    "StageCfg",
    "build_face_detector",
    "build_faster_rcnn",
    "create_model",
    "from_pretrained",
    "list_models",
    "load_weights",
    "metanet_cfgs",
    "save_pretrained",
    "segmentation_loss",
    "silog_loss",
]
