"""intern-arch: the GV-A model family (MetaNet, R50), necks, heads and checkpoints of INTERN."""

import timm
from torch import nn

from .checkpoint import MODEL_ARGS_ATTR, CheckpointError, from_pretrained, load_weights, save_pretrained
from .handover import Handover, load_handover, save_handover
from .heads import (
    BoxHead,
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
    model = timm.create_model(model_name, **kwargs)
    setattr(model, MODEL_ARGS_ATTR, dict(kwargs))  # for save_pretrained's config.json
    return model


__all__ = [
    "FPN",
    "BoxHead",
    "CheckpointError",
    "DeepLabV3",
    "DepthDecoder",
    "DepthModel",
    "Handover",
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
    "load_handover",
    "load_weights",
    "metanet_cfgs",
    "save_handover",
    "save_pretrained",
    "segmentation_loss",
    "silog_loss",
]
