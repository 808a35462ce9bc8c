"""The text half of an image-text dual encoder, as one hand-over part (``text/``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tokenizer import TextTokenizer
from .tower import TextTower, TextTowerCfg

__all__ = ["TextSide"]


class TextSide(nn.Module):
    """Text tower, the projection of pooled image features into the joint space, the logit scale, the
    tokenizer and the prompt templates: with the backbone, the whole zero-shot classifier (CLIP's).

    Args:
        tower: the text tower's sizes.
        image_dim: width of the pooled image features (the backbone's ``num_features``).
        tokenizer: the trained tokenizer (its vocabulary must fit ``tower.vocab_size``).
        templates: prompt templates with one ``{}`` for a class name.
        logit_scale: ``1 / temperature``.
    """

    handover_kind: ClassVar[str] = "text"

    def __init__(
        self,
        tower: TextTowerCfg,
        image_dim: int,
        tokenizer: TextTokenizer,
        templates: Sequence[str] = ("a photo of a {}.",),
        logit_scale: float = 1 / 0.07,
    ) -> None:
        super().__init__()
        if tokenizer.vocab_size > tower.vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens, the tower {tower.vocab_size}")
        self.text = TextTower(tower)
        self.image_proj = nn.Linear(image_dim, tower.embed_dim, bias=False)
        nn.init.normal_(self.image_proj.weight, std=image_dim**-0.5)
        self.register_buffer("logit_scale", torch.tensor([float(logit_scale)]))
        self.tokenizer = tokenizer
        self.templates = list(templates)
        self.args = {"tower": asdict(tower), "image_dim": image_dim, "templates": self.templates}

    @classmethod
    def from_args(cls, args: Mapping[str, Any], folder: str | Path) -> TextSide:
        """Rebuild from a part's ``args`` and the ``tokenizer.json`` in ``folder`` (weights not loaded)."""
        tower = TextTowerCfg(**args["tower"])
        templates = args.get("templates") or ("a photo of a {}.",)
        return cls(tower, int(args["image_dim"]), TextTokenizer.load(folder), templates)

    @property
    def cfg(self) -> TextTowerCfg:
        return self.text.cfg

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids, attention_mask, eot_index)`` on this module's device."""
        device = self.image_proj.weight.device
        ids, mask, eot = self.tokenizer.encode_batch(list(texts), self.cfg.context_length)
        return ids.to(device), mask.to(device), eot.to(device)

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Joint-space embeddings of ``texts`` (B x embed_dim, not normalised)."""
        return self.text.embed(*self.tokenize(texts))

    def encode_image(self, features: Tensor) -> Tensor:
        """Joint-space embeddings of pooled image features (B x embed_dim, not normalised)."""
        return self.image_proj(features)

    @torch.no_grad()
    def classifier(self, class_names: Sequence[str], templates: Sequence[str] | None = None) -> Tensor:
        """Normalised zero-shot classifier ``C x embed_dim``: each class's prompt embeddings averaged."""
        templates = list(templates or self.templates)
        prompts = [template.format(name) for name in class_names for template in templates]
        embeds = F.normalize(self.encode_text(prompts).float(), dim=-1)
        embeds = embeds.view(len(class_names), len(templates), -1).mean(1)
        return F.normalize(embeds, dim=-1)
