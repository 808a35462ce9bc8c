"""ResNet-50, the paper's R50, from timm behind the INTERN backbone contract."""

from timm.models import build_model_with_cfg, generate_default_cfgs
from timm.models.resnet import Bottleneck, ResNet

from ..layers.recompute import CheckpointedSequential
from ._contract import PyramidMixin, pyramid_feature_info
from ._registry import intern_model

LAYERS = ("layer1", "layer2", "layer3", "layer4")


class PyramidResNet(PyramidMixin, ResNet):
    """timm's ResNet whose ``feature_info`` lists C2..C5 (``layer1``..``layer4``) and whose activation
    checkpointing leaves BatchNorm's running statistics as a plain forward does (timm's own recomputes
    each block with the update, so every batch would count twice)."""

    pyramid_indices = (1, 2, 3, 4)  # timm's forward_intermediates counts the stem as index 0

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in LAYERS:  # same modules and names; timm's own checkpointing flag stays off
            setattr(self, name, CheckpointedSequential(*getattr(self, name)))
        levels = self.feature_info[1:]
        self.feature_info = pyramid_feature_info(
            [f["num_chs"] for f in levels], [f["reduction"] for f in levels], [f["module"] for f in levels]
        )

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each bottleneck in the backward pass (``CheckpointedSequential``)."""
        for name in LAYERS:
            getattr(self, name).grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """ResNet has no parameter beyond norms and biases to exempt."""
        return set()


default_cfgs = generate_default_cfgs(
    {
        "r50": {
            "num_classes": 1000,
            "input_size": (3, 224, 224),
            "pool_size": (7, 7),
            "crop_pct": 1.0,
            "crop_mode": "center",
            "interpolation": "bilinear",
            "mean": (0.485, 0.456, 0.406),
            "std": (0.229, 0.224, 0.225),
            "first_conv": "conv1",
            "classifier": "fc",
        }
    }
)


@intern_model
def r50(pretrained: bool = False, **kwargs) -> PyramidResNet:
    """ResNet-50 v1.5 (stride in the 3x3 conv), as in the paper's R50 baselines."""
    return build_model_with_cfg(
        PyramidResNet, "r50", pretrained, block=Bottleneck, layers=(3, 4, 6, 3), **kwargs
    )
