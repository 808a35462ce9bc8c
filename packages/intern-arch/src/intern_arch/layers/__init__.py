"""Blocks of the MetaNet search space, one concept per file."""

from .attention import CrossCovarianceAttention, MultiHeadSelfAttention, WindowSelfAttention, create_attention
from .conv_blocks import FusedMBConv, MBConv
from .shortcut import ShapeShortcut
from .transformer_block import DownsampleTransformerBlock, TransformerBlock

__all__ = [
    "CrossCovarianceAttention",
    "DownsampleTransformerBlock",
    "FusedMBConv",
    "MBConv",
    "MultiHeadSelfAttention",
    "ShapeShortcut",
    "TransformerBlock",
    "WindowSelfAttention",
    "create_attention",
]
