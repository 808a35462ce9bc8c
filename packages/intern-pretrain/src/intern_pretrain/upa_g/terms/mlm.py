"""Masked language modelling (Devlin et al. 2019) on Up-A-G's text tower: BERT's masking of a copy of the
caption, a head from token states to the vocabulary, the loss (``L_MLM`` of Eq. 7) and its term.

The masked copy is the term's own: the contrastive terms see the caption whole, since masking it would
hide the very words (colours, names) an image is paired by."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from intern_arch.text import TextTokenizer
from intern_pretrain.core.gather import is_distributed
from intern_pretrain.upa_g.objective import StepOutputs, Term, TowerDims

__all__ = ["IGNORE_INDEX", "MLMHead", "MLMLoss", "MaskedLanguageTerm", "mask_tokens", "mlm_loss"]

IGNORE_INDEX = -100  # torch's cross-entropy default


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    tokenizer: TextTokenizer,
    prob: float = 0.15,
    rng: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(masked input_ids, labels)`` for MLM.

    Each attended token that is not special (start, end-of-text, pad, mask) is chosen with
    probability ``prob``; a chosen token becomes ``<|mask|>`` (80%), a random non-special token (10%)
    or stays (10%). ``labels`` hold the original id at chosen places and ``IGNORE_INDEX`` elsewhere.
    The draws come from ``rng`` (on its device), so a seeded generator repeats them.
    """
    device = rng.device if rng is not None else input_ids.device
    specials = torch.tensor(tokenizer.special_ids, device=input_ids.device)
    candidates = attention_mask.bool() & ~torch.isin(input_ids, specials)

    def draw() -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=rng, device=device).to(input_ids.device)

    chosen = candidates & (draw() < prob)
    action = draw()
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)

    normal = torch.ones(tokenizer.vocab_size, dtype=torch.bool)
    normal[list(tokenizer.special_ids)] = False
    normal_ids = normal.nonzero().squeeze(1)
    picks = torch.randint(len(normal_ids), input_ids.shape, generator=rng, device=device)
    random_ids = normal_ids.to(device)[picks].to(input_ids.device)

    masked = input_ids.clone()
    masked[to_mask] = tokenizer.mask_token_id
    masked[to_random] = random_ids[to_random]
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return masked, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy over the masked positions of this process.

    Args:
        logits: `(B, L, V)` vocabulary logits.
        labels: `(B, L)` original token ids at masked positions, `ignore_index` elsewhere.

    Returns:
        The loss; `0` (still connected to `logits`, so DDP sees every parameter used) when no position
        is masked.
    """
    if not bool((labels != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.flatten(0, -2), labels.flatten(), ignore_index=ignore_index)


class MLMLoss(nn.Module):
    """MLM cross-entropy, optionally normalised by the masked-token count of all ranks.

    With `global_mean=True` under DDP each rank returns `world_size * sum_local / count_all`, so the mean
    of the per-rank losses (what DDP's gradient average optimises) is the cross-entropy averaged over
    every masked token of the global batch, exactly as one process would compute it, even when ranks
    mask different numbers of tokens. Costs one all-reduce of a scalar.

    Args:
        ignore_index: Label of unmasked positions.
        global_mean: Normalise by the global masked-token count when distributed.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX, global_mean: bool = True) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.global_mean = global_mean

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not (self.global_mean and is_distributed()):
            return mlm_loss(logits, labels, self.ignore_index)
        count = (labels != self.ignore_index).sum().to(logits.dtype)
        total = count.detach().clone()
        dist.all_reduce(total)
        if float(total) == 0:
            return logits.sum() * 0.0
        summed = F.cross_entropy(
            logits.flatten(0, -2), labels.flatten(), ignore_index=self.ignore_index, reduction="sum"
        )
        return summed * dist.get_world_size() / total


class MLMHead(nn.Module):
    """Linear map from token states to vocabulary logits, optionally tied to the token embedding."""

    def __init__(self, width: int, vocab_size: int, tied: nn.Embedding | None = None) -> None:
        super().__init__()
        self.decoder = nn.Linear(width, vocab_size)
        if tied is not None:
            if tied.weight.shape != self.decoder.weight.shape:
                raise ValueError(
                    f"tied embedding is {tuple(tied.weight.shape)}, need ({vocab_size}, {width})"
                )
            self.decoder.weight = tied.weight
        nn.init.zeros_(self.decoder.bias)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Logits ``... x vocab_size`` for token states ``... x width``."""
        return self.decoder(states)


class MaskedLanguageTerm(Term):
    """``L_MLM``: the caption's masked copy through the text tower, its masked tokens predicted by a
    linear head from their states (BERT's 15% / 80-10-10 masking).

    Args:
        dims: ``text_width`` and ``vocab_size`` size the head.
        weight: the term's weight.
        mask_prob: the share of real tokens chosen (paper / BERT 0.15).
    """

    tower = "text"

    def __init__(self, dims: TowerDims, weight: float = 1.0, mask_prob: float = 0.15) -> None:
        super().__init__(weight)
        self.mask_prob = mask_prob
        self.head = MLMHead(dims.text_width, dims.vocab_size)
        self.loss = MLMLoss()

    def text_copy(
        self, ids: torch.Tensor, mask: torch.Tensor, tokenizer: TextTokenizer, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(ids, mask, tokenizer, self.mask_prob, generator)

    def forward(self, out: StepOutputs) -> torch.Tensor:
        states, labels = out.copy_of(self)
        chosen = labels != IGNORE_INDEX
        return self.loss(self.head(states[chosen]), labels[chosen])
