"""The text side of Up-A-G: BPE tokenizer, bidirectional text tower, MLM masking and EDA."""

from intern_arch.text import (
    EOT,
    MASK,
    PAD,
    PAPER_VOCAB_SIZE,
    SOT,
    SPECIAL_TOKENS,
    TOKENIZER_FILE,
    TextTokenizer,
    TextTower,
    TextTowerCfg,
    bert_config,
    train_tokenizer,
)

from .eda import EDA, OPERATIONS, synonym_table, world_synonyms
from .mlm import IGNORE_INDEX, mask_tokens
from .mlm_head import MLMHead

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
