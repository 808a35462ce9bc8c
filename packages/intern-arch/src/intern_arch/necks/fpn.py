"""The pyramid adapter and FPN neck through which dense heads see a backbone (docs/architecture.md).

Both follow torchvision's detection convention: a module returning an ordered ``dict[str, Tensor]`` with
an ``out_channels`` attribute, so torchvision's Faster R-CNN and RetinaNet take them as their backbone.
"""

from collections import OrderedDict
from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ..models import PYRAMID_LEVELS
from ._backbone import BackboneHolder


class PyramidAdapter(BackboneHolder):
    """The chosen pyramid levels of a backbone's ``forward_pyramid``, in order.

    Args:
        backbone: A model with the intern-arch backbone contract (``feature_info``, ``forward_pyramid``).
        levels: Pyramid levels to return, a subsequence of ``C2..C5``.
        freeze_backbone: Take no gradient into the backbone and keep it in eval mode.

    Attributes:
        out_channels: Channels of each returned level, in ``levels`` order.
    """

    def __init__(
        self, backbone: nn.Module, levels: Sequence[str] = PYRAMID_LEVELS, freeze_backbone: bool = False
    ) -> None:
        super().__init__(backbone, freeze_backbone)
        channels = {info["name"]: info["num_chs"] for info in backbone.feature_info}
        if not levels or [lvl for lvl in channels if lvl in levels] != list(levels):
            raise ValueError(f"levels must be an ordered subsequence of {list(channels)}, got {list(levels)}")
        self.levels = tuple(levels)
        self.out_channels = [channels[level] for level in self.levels]

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        pyramid = self.backbone.forward_pyramid(x)
        return OrderedDict((level, pyramid[level]) for level in self.levels)


class FPN(nn.Module):
    """torchvision's FeaturePyramidNetwork over a backbone's pyramid: ``C<n>`` becomes ``P<n>``.

    With ``extra_max_pool`` the last level is subsampled once more (torchvision's ``LastLevelMaxPool``),
    so the default levels give P2..P6 at strides 4, 8, 16, 32 and 64, as Faster R-CNN's RPN expects.

    Args:
        backbone: A model with the intern-arch backbone contract.
        out_channels: Channels of every output level.
        levels: Backbone levels feeding the FPN, a subsequence of ``C2..C5``.
        extra_max_pool: Add one level at twice the last stride.
        freeze_backbone: Take no gradient into the backbone and keep it in eval mode.
    """

    handover_kind: ClassVar[str] = "fpn"

    def __init__(
        self,
        backbone: nn.Module,
        out_channels: int = 256,
        levels: Sequence[str] = PYRAMID_LEVELS,
        extra_max_pool: bool = True,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        self.args = {"out_channels": out_channels, "levels": list(levels), "extra_max_pool": extra_max_pool}
        self.body = PyramidAdapter(backbone, levels, freeze_backbone)
        self.fpn = FeaturePyramidNetwork(
            self.body.out_channels, out_channels, extra_blocks=LastLevelMaxPool() if extra_max_pool else None
        )
        self.out_channels = out_channels
        self.names = [f"P{level[1:]}" for level in self.body.levels]
        if extra_max_pool:
            self.names.append(f"P{int(self.body.levels[-1][1:]) + 1}")

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return OrderedDict(zip(self.names, self.fpn(self.body(x)).values(), strict=True))
