"""The terms Up-A-G's objective is made of, one file each (``conf/stage/upa_g_terms/`` picks them)."""

from intern_pretrain.upa_g.terms.contrastive import ClipLoss, ContrastiveTerm, contrastive_logits
from intern_pretrain.upa_g.terms.mlm import (
    IGNORE_INDEX,
    MaskedLanguageTerm,
    MLMHead,
    MLMLoss,
    mask_tokens,
    mlm_loss,
)
from intern_pretrain.upa_g.terms.similar_text import SimilarTextLoss, SimilarTextTerm, TextFeatureQueue
from intern_pretrain.upa_g.terms.simsiam import SimSiamHead, SimSiamTerm, simsiam_loss

__all__ = [
    "IGNORE_INDEX",
    "ClipLoss",
    "ContrastiveTerm",
    "MLMHead",
    "MLMLoss",
    "MaskedLanguageTerm",
    "SimSiamHead",
    "SimSiamTerm",
    "SimilarTextLoss",
    "SimilarTextTerm",
    "TextFeatureQueue",
    "contrastive_logits",
    "mask_tokens",
    "mlm_loss",
    "simsiam_loss",
]
