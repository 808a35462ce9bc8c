"""Up-A-G's objective as a weighted sum of named terms (the paper's group supervision, Eq. 7-8).

``L_GS = (1 - alpha) L_ICS + alpha L_STS`` with ``L_ICS`` the image-text contrastive pairs plus SimSiam
and MLM is, written out, a weighted sum: with the paper's ``alpha = 0.5`` every term weighs 0.5. Each
term is a :class:`Term` chosen by configuration (``conf/stage/upa_g_terms/``): a new term is a class
and a config entry, and plain CLIP is the objective with the one ``clip`` term.

A term says what the step must compute for it (image views, caption views, an encoded modified copy of
the caption such as MLM's masked one) and which tower's optimiser its own parameters join; the module
computes the union once, in one batched forward per tower, and hands every term the same
:class:`StepOutputs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from intern_arch.text import TextTokenizer

__all__ = ["Objective", "StepOutputs", "Term", "TowerDims"]


@dataclass(frozen=True)
class TowerDims:
    """Sizes a term may need to build its own layers."""

    feature_dim: int  # the backbone's pooled features
    embed_dim: int  # the joint image-text space
    text_width: int  # the text tower's token states
    vocab_size: int  # the tokenizer's vocabulary


@dataclass
class StepOutputs:
    """What one training step computed, for the objective's terms.

    Attributes:
        image_features: pooled backbone features, one ``B x feature_dim`` tensor per image view.
        image_embeds: L2-normalised joint-space embeddings, one per image view.
        text_embeds: L2-normalised joint-space embeddings of the caption, then of its EDA copy.
        logit_scale: ``1 / temperature``.
        text_copies: per term that asked for one, the token states of its copy of the caption and the
            targets it returned with it.
    """

    image_features: list[Tensor]
    image_embeds: list[Tensor]
    text_embeds: list[Tensor]
    logit_scale: Tensor
    text_copies: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)

    def copy_of(self, term: Term) -> tuple[Tensor, Tensor]:
        """The token states and targets of ``term``'s caption copy."""
        return self.text_copies[id(term)]


class Term(nn.Module):
    """One term of the objective.

    Class attributes say what the step computes for it: ``image_views`` (1 or 2) and ``text_views`` (the
    caption, and its EDA copy with 2); ``tower`` is the optimiser its parameters join (``image`` or
    ``text``). A term that needs its own encoded copy of the caption overrides :meth:`text_copy`.

    Subclasses take the :class:`TowerDims` first (``dims``), then their own settings and ``weight``.

    Args:
        weight: the term's weight in the sum.
    """

    image_views: int = 1
    text_views: int = 1
    tower: ClassVar[str] = "image"

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    def text_copy(
        self, ids: Tensor, mask: Tensor, tokenizer: TextTokenizer, generator: torch.Generator
    ) -> tuple[Tensor, Tensor] | None:
        """A modified copy of the caption's token ids for the text tower to encode, and its targets."""
        return None

    def forward(self, out: StepOutputs) -> Tensor | dict[str, Tensor]:
        """The term's loss, or a dict of parts whose ``loss`` is the term's value."""
        raise NotImplementedError


class Objective(nn.Module):
    """The weighted sum of named terms.

    Args:
        terms: the terms by name (their names are their log keys).
    """

    def __init__(self, terms: Mapping[str, Term]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("the objective needs at least one term")
        self.terms = nn.ModuleDict(dict(terms))

    @property
    def image_views(self) -> int:
        return max(term.image_views for term in self.terms.values())

    @property
    def text_views(self) -> int:
        return max(term.text_views for term in self.terms.values())

    def forward(self, out: StepOutputs) -> tuple[Tensor, dict[str, Tensor]]:
        """``(total, parts)``: parts hold each term's value under its name, extra values of a term under
        ``<name>/<key>``, and ``loss``; all detached, for logging."""
        total: Tensor | float = 0.0
        parts: dict[str, Tensor] = {}
        for name, term in self.terms.items():
            value = term(out)
            if isinstance(value, dict):
                parts.update({f"{name}/{key}": v for key, v in value.items() if key != "loss"})
                value = value["loss"]
            parts[name] = value
            total = total + term.weight * value
        parts["loss"] = total  # type: ignore[assignment]
        return total, {key: value.detach() for key, value in parts.items()}  # type: ignore[return-value]
