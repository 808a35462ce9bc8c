"""Transformer operators of the unified search space (paper eq. 3-5) on NCHW maps."""

from timm.layers import DropPath, LayerScale, Mlp
from torch import Tensor, nn

from .attention import AttentionKind, create_attention
from .shortcut import ShapeShortcut


class TransformerBlock(nn.Module):
    """Depthwise-conv positional encoding, then pre-LN attention and a GELU MLP, each with layer-scale.

    Takes and returns NCHW maps. Under ``channels_last`` memory the NHWC views are free.
    """

    def __init__(
        self,
        dim: int,
        attention: AttentionKind = "mhsa",
        head_dim: int = 32,
        expansion: float = 4.0,
        drop_path: float = 0.0,
        layer_scale_init: float = 1e-6,
        window_size: int = 7,
    ) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = create_attention(attention, dim, head_dim=head_dim, window_size=window_size)
        self.ls1 = LayerScale(dim, layer_scale_init)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * expansion))
        self.ls2 = LayerScale(dim, layer_scale_init)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = (x + self.pos_embed(x)).permute(0, 2, 3, 1)
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        x = x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
        return x.permute(0, 3, 1, 2)


class DownsampleTransformerBlock(nn.Module):
    """First block of an attention stage that changes stride or width (released MetaNet code).

    LayerNorm, 3x3 max-pool with the stride, attention projecting to the new width, scaled by layer-scale
    and added to the max-pool + 1x1 shortcut; no MLP.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        stride: int = 2,
        attention: AttentionKind = "mhsa",
        head_dim: int = 32,
        layer_scale_init: float = 1e-6,
        window_size: int = 7,
    ) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(in_dim, in_dim, 3, padding=1, groups=in_dim)
        self.shortcut = ShapeShortcut(in_dim, out_dim, stride)
        self.norm = nn.LayerNorm(in_dim)
        self.pool = nn.MaxPool2d(3, stride=stride, padding=1)
        self.attn = create_attention(attention, in_dim, out_dim, head_dim=head_dim, window_size=window_size)
        self.ls = LayerScale(out_dim, layer_scale_init)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.pos_embed(x)
        y = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        y = self.attn(self.pool(y).permute(0, 2, 3, 1))
        return self.shortcut(x) + self.ls(y).permute(0, 3, 1, 2)
