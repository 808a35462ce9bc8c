"""The text tower of INTERN's image-text models: a transformer encoder from a ``transformers`` config,
never downloaded.

The paper's text encoder has CLIP's sizes (12 layers, width 512, 8 heads, context 77, a 49,408-token
BPE vocabulary plus a mask token) and takes its feature at the end-of-text token. CLIP's text model
is causal, which suits contrastive pooling at EOT but leaves MLM seeing only the left context of a
masked token. So the tower is a BERT encoder (``BertModel``, bidirectional, dropout off as in CLIP)
with CLIP's sizes: padding is masked out of attention and the pooled feature is the final state at
``eot_index`` (as CLIP pools); an MLM head reading every token state predicts masked tokens from both
sides, as in BERT (DeCLIP adds MLM to the same text encoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import BertConfig, BertModel

from .tokenizer import PAPER_VOCAB_SIZE


@dataclass(frozen=True)
class TextTowerCfg:
    """Sizes of the text tower; the defaults are the paper's (``embed_dim``: CLIP R50's joint space)."""

    width: int = 512
    layers: int = 12
    heads: int = 8
    context_length: int = 77
    vocab_size: int = PAPER_VOCAB_SIZE
    embed_dim: int = 1024


def bert_config(cfg: TextTowerCfg) -> BertConfig:
    """The ``BertConfig`` of ``cfg``: 4x MLP, GELU, no dropout, one token type, no padding index."""
    return BertConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.width,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=4 * cfg.width,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=cfg.context_length,
        type_vocab_size=1,
        pad_token_id=None,  # padding is masked in attention; no embedding row is frozen at zero
    )


class TextTower(nn.Module):
    """Bidirectional text encoder pooled at the end-of-text token, with a projection to the joint space."""

    def __init__(self, cfg: TextTowerCfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = BertModel(bert_config(cfg), add_pooling_layer=False)
        self.proj = nn.Linear(cfg.width, cfg.embed_dim, bias=False)
        nn.init.normal_(self.proj.weight, std=cfg.width**-0.5)

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.encoder.embeddings.word_embeddings

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, eot_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(pooled B x width, token states B x L x width)``; ``pooled`` is the state at EOT."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = states[torch.arange(states.shape[0], device=states.device), eot_index]
        return pooled, states

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, eot_index: torch.Tensor
    ) -> torch.Tensor:
        """Text features in the joint space (``B x embed_dim``, not normalised)."""
        return self.proj(self(input_ids, attention_mask, eot_index)[0])
