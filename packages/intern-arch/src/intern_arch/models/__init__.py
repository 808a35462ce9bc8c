"""Registered backbones: MetaNet variants and ResNet-50."""

from ._contract import CONTRACT_METHODS, PYRAMID_LEVELS, PYRAMID_STRIDES
from ._registry import list_models
from .metanet import MetaNet, MetaNetCfg, StageCfg, metanet_cfgs
from .resnet import PyramidResNet

__all__ = [
    "CONTRACT_METHODS",
    "PYRAMID_LEVELS",
    "PYRAMID_STRIDES",
    "MetaNet",
    "MetaNetCfg",
    "PyramidResNet",
    "StageCfg",
    "list_models",
    "metanet_cfgs",
]
