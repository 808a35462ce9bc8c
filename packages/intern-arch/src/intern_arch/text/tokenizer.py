"""Byte-level BPE tokenizer for captions, trained offline with the ``tokenizers`` library.

The text side of Up-A-G (paper sec. 5, after CLIP and DeCLIP) uses a lower-cased BPE vocabulary of 49,408
tokens plus a mask token for MLM, a start and an end-of-text token, and a context of 77 tokens. Here
the vocabulary is trained on the run's own caption corpus and saved as ``tokenizer.json`` in the run
folder, so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
PAD = "<|pad|>"
MASK = "<|mask|>"
SPECIAL_TOKENS = (SOT, EOT, PAD, MASK)
TOKENIZER_FILE = "tokenizer.json"
PAPER_VOCAB_SIZE = 49_408 + 1  # CLIP's BPE vocabulary plus the mask token


def _build(vocab_size: int, min_frequency: int, show_progress: bool) -> tuple[Tokenizer, trainers.BpeTrainer]:
    tokenizer = Tokenizer(models.BPE())
    # CLIP-style cleaning: NFC, collapsed whitespace, lower case.
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.NFC(),
            normalizers.Replace(Regex(r"\s+"), " "),
            normalizers.Strip(),
            normalizers.Lowercase(),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    return tokenizer, trainer


def train_tokenizer(
    corpus: Iterable[str],
    vocab_size: int = PAPER_VOCAB_SIZE,
    min_frequency: int = 2,
    show_progress: bool = False,
) -> TextTokenizer:
    """Train a byte-level BPE on ``corpus``; ``vocab_size`` counts the 256 bytes and the special tokens.

    A small corpus may stop merging before ``vocab_size``; ``TextTokenizer.vocab_size`` is the real size.
    ``show_progress`` shows the ``tokenizers`` trainer's own progress bars.
    """
    tokenizer, trainer = _build(vocab_size, min_frequency, show_progress)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{SOT} $A {EOT}", special_tokens=[(t, tokenizer.token_to_id(t)) for t in (SOT, EOT)]
    )
    return TextTokenizer(tokenizer)


class TextTokenizer:
    """A trained ``tokenizers.Tokenizer`` with fixed-length batch encoding for the text tower."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
        missing = [token for token, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}")
        self.tokenizer = tokenizer
        self.sot_token_id, self.eot_token_id = ids[SOT], ids[EOT]
        self.pad_token_id, self.mask_token_id = ids[PAD], ids[MASK]

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Ids of the start, end-of-text, pad and mask tokens."""
        return self.sot_token_id, self.eot_token_id, self.pad_token_id, self.mask_token_id

    def normalize(self, text: str) -> str:
        """``text`` as the tokenizer sees it: cleaned whitespace, lower case."""
        return self.tokenizer.normalizer.normalize_str(text)

    def encode_batch(
        self, texts: Sequence[str], context_length: int = 77
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode ``texts`` to ``(input_ids, attention_mask, eot_index)``.

        Each row is ``<|startoftext|> tokens <|endoftext|>`` then ``<|pad|>`` up to ``context_length``;
        a longer text loses its last tokens but keeps the end-of-text token last. ``input_ids`` and
        ``attention_mask`` are ``B x context_length`` (int64), ``eot_index`` (B) is where EOT sits.
        """
        if context_length < 2:
            raise ValueError(f"context_length must hold the start and end tokens, got {context_length}")
        input_ids = torch.full((len(texts), context_length), self.pad_token_id, dtype=torch.long)
        eot_index = torch.empty(len(texts), dtype=torch.long)
        for row, encoding in enumerate(self.tokenizer.encode_batch(list(texts))):
            ids = encoding.ids
            if len(ids) > context_length:
                ids = [*ids[: context_length - 1], self.eot_token_id]
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            eot_index[row] = len(ids) - 1
        attention_mask = (torch.arange(context_length) <= eot_index[:, None]).long()
        return input_ids, attention_mask, eot_index

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of ``ids`` without special tokens."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/tokenizer.json``; returns its path. (Writers of a hand-over or run folder write
        the folder atomically: :func:`intern_arch.checkpoint.atomic_folder`.)"""
        path = Path(folder) / TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.tokenizer.to_str(pretty=True))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        """Load a ``tokenizer.json`` file, or the one inside a run folder."""
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer file at {path}")
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as error:  # tokenizers raises a bare Exception on malformed JSON
            raise ValueError(f"cannot load tokenizer from {path}: {error}") from error
