"""Self-attention operators of the unified search space (paper eq. 4), on NHWC feature maps.

Every operator maps ``(B, H, W, dim)`` to ``(B, H, W, out_dim)``; ``out_dim`` differs from ``dim`` only
in the first block of a stage that widens the network.
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AttentionKind = Literal["mhsa", "lsa", "xca"]


class MultiHeadSelfAttention(nn.Module):
    """Global multi-head self-attention with a qkv bias (through ``scaled_dot_product_attention``)."""

    def __init__(self, dim: int, out_dim: int | None = None, head_dim: int = 32) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"attention width {dim} is not a multiple of head_dim {head_dim}")
        self.num_heads = dim // head_dim
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, out_dim or dim)

    def attend(self, tokens: Tensor) -> Tensor:
        """``(B, N, dim)`` -> ``(B, N, out_dim)``."""
        b, n, c = tokens.shape
        q, k, v = self.qkv(tokens).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        return self.attend(x.reshape(b, h * w, c)).view(b, h, w, -1)


class WindowSelfAttention(MultiHeadSelfAttention):
    """Local self-attention (LSA): multi-head attention inside non-overlapping square windows.

    Maps whose sides are not multiples of the window are zero-padded, and the padding is cropped away.
    """

    def __init__(
        self, dim: int, out_dim: int | None = None, head_dim: int = 32, window_size: int = 7
    ) -> None:
        super().__init__(dim, out_dim, head_dim)
        self.window_size = window_size

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        ws = self.window_size
        pad_h, pad_w = (-h) % ws, (-w) % ws
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        windows = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        out = self.attend(windows)
        out = out.view(b, hp // ws, wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
        return out[:, :h, :w].contiguous()


class CrossCovarianceAttention(nn.Module):
    """Cross-covariance attention (XCA, XCiT): attention between channels, linear in the token count.

    Queries and keys are L2-normalised along the tokens; a learnable per-head temperature scales the
    ``head_dim x head_dim`` attention map.
    """

    def __init__(self, dim: int, out_dim: int | None = None, head_dim: int = 32) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"attention width {dim} is not a multiple of head_dim {head_dim}")
        self.num_heads = dim // head_dim
        self.temperature = nn.Parameter(torch.ones(self.num_heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, out_dim or dim)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        n = h * w
        q, k, v = self.qkv(x.reshape(b, n, c)).view(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 4, 1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        out = (attn @ v).permute(0, 3, 1, 2).reshape(b, n, c)
        return self.proj(out).view(b, h, w, -1)


def create_attention(
    kind: AttentionKind, dim: int, out_dim: int | None = None, head_dim: int = 32, window_size: int = 7
) -> nn.Module:
    """Build the attention operator named by ``kind``."""
    if kind == "mhsa":
        return MultiHeadSelfAttention(dim, out_dim, head_dim)
    if kind == "lsa":
        return WindowSelfAttention(dim, out_dim, head_dim, window_size)
    if kind == "xca":
        return CrossCovarianceAttention(dim, out_dim, head_dim)
    raise ValueError(f"unknown attention kind {kind!r}; expected one of 'mhsa', 'lsa', 'xca'")
