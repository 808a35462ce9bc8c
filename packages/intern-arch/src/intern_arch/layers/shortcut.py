"""Shortcut used by every MetaNet block whose output shape differs from its input."""

from torch import Tensor, nn


class ShapeShortcut(nn.Module):
    """3x3 max-pool with the block's stride, then a 1x1 conv to the new width (released MetaNet code).

    Identity when neither stride nor width changes.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.changes_shape = stride != 1 or in_chs != out_chs
        if self.changes_shape:
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)
            self.proj = nn.Conv2d(in_chs, out_chs, 1)

    def forward(self, x: Tensor) -> Tensor:
        if not self.changes_shape:
            return x
        return self.proj(self.pool(x))
