"""Operators of the unified search space against independent formulations."""

import pytest
import torch

from intern_arch.layers import (
    CrossCovarianceAttention,
    MultiHeadSelfAttention,
    WindowSelfAttention,
    create_attention,
)


def test_window_attention_with_one_window_is_global_attention() -> None:
    torch.manual_seed(0)
    local = WindowSelfAttention(32, head_dim=8, window_size=8)
    glob = MultiHeadSelfAttention(32, head_dim=8)
    glob.load_state_dict(local.state_dict())
    x = torch.randn(2, 8, 8, 32)
    torch.testing.assert_close(local(x), glob(x))


def test_window_attention_is_local_and_handles_padding() -> None:
    torch.manual_seed(0)
    attn = WindowSelfAttention(16, head_dim=8, window_size=4)
    x = torch.randn(1, 6, 6, 16)
    out = attn(x)
    assert out.shape == (1, 6, 6, 16)
    changed = x.clone()
    changed[:, 5, 5] += 10.0  # bottom-right window only
    diff = (attn(changed) - out).abs().sum(-1)[0]
    assert diff[:4, :4].max() == 0 and diff[4:, 4:].min() > 0


def test_mhsa_matches_explicit_softmax_attention() -> None:
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(16, out_dim=24, head_dim=8)
    x = torch.randn(2, 3, 5, 16)
    tokens = x.reshape(2, 15, 16)
    q, k, v = attn.qkv(tokens).view(2, 15, 3, 2, 8).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) / 8**0.5).softmax(-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 15, 16)).view(2, 3, 5, 24)
    torch.testing.assert_close(attn(x), expected)


def test_xca_is_token_permutation_equivariant() -> None:
    torch.manual_seed(0)
    attn = CrossCovarianceAttention(16, head_dim=8)
    x = torch.randn(1, 1, 12, 16)
    perm = torch.randperm(12)
    torch.testing.assert_close(attn(x[:, :, perm]), attn(x)[:, :, perm], rtol=1e-5, atol=1e-6)


def test_unknown_attention_kind_names_it() -> None:
    with pytest.raises(ValueError, match="'linear'"):
        create_attention("linear", 16)
