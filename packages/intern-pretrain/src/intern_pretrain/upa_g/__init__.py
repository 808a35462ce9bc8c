"""Up-A-G (paper sec. 5.1.1): the dual encoder, its objective of named terms, views, data and export."""

from intern_pretrain.upa_g.data import caption_tokenizer, image_text_data, iter_captions
from intern_pretrain.upa_g.eda import EDA
from intern_pretrain.upa_g.module import UpaGModule
from intern_pretrain.upa_g.objective import Objective, StepOutputs, Term, TowerDims
from intern_pretrain.upa_g.views import UpaGTransform, moco_v2_view

__all__ = [
    "EDA",
    "Objective",
    "StepOutputs",
    "Term",
    "TowerDims",
    "UpaGModule",
    "UpaGTransform",
    "caption_tokenizer",
    "image_text_data",
    "iter_captions",
    "moco_v2_view",
]
