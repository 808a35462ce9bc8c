"""BERT's masking for MLM: 15% of real tokens chosen; of those 80% masked, 10% random, 10% kept."""

from __future__ import annotations

import torch

from intern_arch.text import TextTokenizer

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
