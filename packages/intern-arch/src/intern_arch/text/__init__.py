"""The text side of INTERN's image-text models: BPE tokenizer, text tower, and the hand-over part that
joins them. Needs the ``text`` extra (transformers, tokenizers): ``pip install 'intern-arch[text]'``."""

from .side import TextSide
from .tokenizer import (
    EOT,
    MASK,
    PAD,
    PAPER_VOCAB_SIZE,
    SOT,
    SPECIAL_TOKENS,
    TOKENIZER_FILE,
    TextTokenizer,
    train_tokenizer,
)
from .tower import TextTower, TextTowerCfg, bert_config

__all__ = [
    "EOT",
    "MASK",
    "PAD",
    "PAPER_VOCAB_SIZE",
    "SOT",
    "SPECIAL_TOKENS",
    "TOKENIZER_FILE",
    "TextSide",
    "TextTokenizer",
    "TextTower",
    "TextTowerCfg",
    "bert_config",
    "train_tokenizer",
]
