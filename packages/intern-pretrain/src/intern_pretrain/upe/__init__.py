"""Up-E (paper 6): experts trained on several labelled sources of one task type at once.

A shared backbone (for detection a shared FPN too) and one head per source dataset, each head seeing
only its source (natural label spaces; ``unified`` and ``partial`` merge them through the label
system). Classification (:class:`ClassificationExpert`, 6.2), detection (:class:`DetectionExpert`, 6.3)
and segmentation (:class:`SegmentationExpert`, 6.4) start from Up-A's hand-over; :func:`expert_data`
reads the sources together (per-source sub-batches in one process, one source per rank under DDP).
"""

from intern_pretrain.upe.base import ExpertModule
from intern_pretrain.upe.classification import ClassificationExpert
from intern_pretrain.upe.data import expert_data, task_transform
from intern_pretrain.upe.detection import DetectionExpert
from intern_pretrain.upe.heads import IndexedPredictor, SourceHeads
from intern_pretrain.upe.labels import merged_labels
from intern_pretrain.upe.segmentation import SegmentationExpert

__all__ = [
    "ClassificationExpert",
    "DetectionExpert",
    "ExpertModule",
    "IndexedPredictor",
    "SegmentationExpert",
    "SourceHeads",
    "expert_data",
    "merged_labels",
    "task_transform",
]
