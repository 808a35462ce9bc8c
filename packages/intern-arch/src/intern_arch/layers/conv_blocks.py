"""Convolution operators of the unified search space (paper eq. 2): MBConv and Fused-MBConv."""

from timm.layers import DropPath, SEModule
from torch import Tensor, nn

from .shortcut import ShapeShortcut


def _squeeze_excite(chs: int) -> SEModule:
    """SE with hidden = chs / 4 rounded to a multiple of 8, ReLU and hard-sigmoid gate."""
    return SEModule(chs, rd_ratio=0.25, rd_divisor=8, gate_layer="hard_sigmoid")


def _project(in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1) -> nn.Sequential:
    """Projection conv and a BatchNorm whose weight starts at zero: the block starts as its shortcut."""
    norm = nn.BatchNorm2d(out_chs)
    nn.init.zeros_(norm.weight)
    conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=kernel_size // 2)
    return nn.Sequential(conv, norm)


class MBConv(nn.Module):
    """Inverted bottleneck: pre-BN, 1x1 expand, 3x3 depthwise (carries the stride), SE, 1x1 project."""

    def __init__(
        self, in_chs: int, out_chs: int, stride: int = 1, expansion: float = 4.0, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        hidden = int(in_chs * expansion)
        self.shortcut = ShapeShortcut(in_chs, out_chs, stride)
        if hidden != in_chs or stride != 1:
            self.expand = nn.Sequential(
                nn.BatchNorm2d(in_chs),
                nn.Conv2d(in_chs, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.GELU(),
            )
        else:
            self.expand = nn.Identity()
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.GELU(),
        )
        self.se = _squeeze_excite(hidden)
        self.project = _project(hidden, out_chs)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return self.shortcut(x) + self.drop_path(out)


class FusedMBConv(nn.Module):
    """MBConv whose expand and depthwise convs are fused into one 3x3 conv.

    With expansion 1 the block is a single 3x3 conv (carrying the stride) after SE.
    """

    def __init__(
        self, in_chs: int, out_chs: int, stride: int = 1, expansion: float = 4.0, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        hidden = int(in_chs * expansion)
        self.shortcut = ShapeShortcut(in_chs, out_chs, stride)
        if hidden != in_chs:
            self.expand = nn.Sequential(
                nn.BatchNorm2d(in_chs),
                nn.Conv2d(in_chs, hidden, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.GELU(),
            )
            self.se = _squeeze_excite(hidden)
            self.project = _project(hidden, out_chs)
        else:
            self.expand = nn.Identity()
            self.se = _squeeze_excite(hidden)
            self.project = _project(hidden, out_chs, kernel_size=3, stride=stride)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.se(self.expand(x)))
        return self.shortcut(x) + self.drop_path(out)
