"""The RNN controller that emits an architecture's tokens (INTERN paper 4.3, after MnasNet/NASNet).

An LSTM cell runs once per token; its input is the embedding of the previous token (a learned start
vector first) and each position has its own logits over that decision's choices. ``sample`` draws a
batch of sequences; ``forward`` scores given sequences (log-probability and entropy per sequence), what
PPO's ratio and entropy bonus need.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Controller"]


class Controller(nn.Module):
    """An autoregressive policy over token sequences with ``vocab_sizes[i]`` choices at position ``i``."""

    def __init__(self, vocab_sizes: Sequence[int], hidden: int = 64) -> None:
        super().__init__()
        self.vocab_sizes = list(vocab_sizes)
        offsets = torch.tensor([0, *self.vocab_sizes]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        total = int(offsets[-1])
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embed = nn.Embedding(total, hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.logits = nn.Linear(hidden, total)
        nn.init.zeros_(self.logits.weight)  # uniform over every decision at the start
        nn.init.zeros_(self.logits.bias)

    def _step_logits(self, h: Tensor, position: int) -> Tensor:
        lo, hi = int(self.offsets[position]), int(self.offsets[position + 1])
        return self.logits(h)[:, lo:hi]

    def _run(
        self, batch: int, tokens: Tensor | None, generator: torch.Generator | None
    ) -> tuple[Tensor, ...]:
        x = self.start.expand(batch, -1)
        state = None
        chosen, log_probs, entropies = [], [], []
        for position in range(len(self.vocab_sizes)):
            state = self.cell(x, state)
            log_p = self._step_logits(state[0], position).log_softmax(-1)
            if tokens is None:
                token = torch.multinomial(log_p.exp(), 1, generator=generator).squeeze(1)
            else:
                token = tokens[:, position]
            chosen.append(token)
            log_probs.append(log_p.gather(1, token[:, None]).squeeze(1))
            entropies.append(-(log_p.exp() * log_p).sum(-1))
            x = self.embed(token + self.offsets[position])
        return torch.stack(chosen, 1), torch.stack(log_probs, 1).sum(1), torch.stack(entropies, 1).sum(1)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probability and entropy (summed over positions) of each sequence in ``tokens`` (B x T)."""
        _, log_prob, entropy = self._run(tokens.shape[0], tokens, None)
        return log_prob, entropy

    @torch.no_grad()
    def sample(self, batch: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``batch`` sequences drawn from the policy and their log-probabilities."""
        tokens, log_prob, _ = self._run(batch, None, generator)
        return tokens, log_prob
