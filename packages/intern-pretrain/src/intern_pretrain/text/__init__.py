"""The text side of Up-A-G: BPE tokenizer, bidirectional text tower, MLM masking and EDA."""

from .eda import EDA, OPERATIONS, synonym_table, world_synonyms
from .mlm import IGNORE_INDEX, mask_tokens
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
from .tower import MLMHead, TextTower, TextTowerCfg, bert_config

__all__ = [
    "EDA",
    "EOT",
    "IGNORE_INDEX",
    "MASK",
    "OPERATIONS",
    "PAD",
    "PAPER_VOCAB_SIZE",
    "SOT",
    "SPECIAL_TOKENS",
    "TOKENIZER_FILE",
    "MLMHead",
    "TextTokenizer",
    "TextTower",
    "TextTowerCfg",
    "bert_config",
    "mask_tokens",
    "synonym_table",
    "train_tokenizer",
    "world_synonyms",
]
