"""Down-A (paper section 8): adapting a pretrained backbone to a downstream task.

- :mod:`.multistage`: the methods (linear probe, fine-tuning, multi-stage fine-tuning) as grids of
  stages selected on validation; :mod:`.pipeline` runs one from the ``downa`` config;
- stage 1, :mod:`.vqgan`, :mod:`.vqgan_module`, :mod:`.vqgan_io`, :mod:`.stage1`: the VQ-GAN trained on
  upstream images; stage 2, :mod:`.reconstruct`: the downstream images through it;
- :mod:`.contrastive`, :mod:`.collapse`: the sample-based contrastive term (section 8.2);
- :mod:`.frechet`, :mod:`.domains`: the FD score between datasets (Table 28);
- :mod:`.export`: the adapted model as a hand-over folder.
"""

from intern_transfer.downa.collapse import ContrastSettings, attach_contrast
from intern_transfer.downa.contrastive import (
    FeatureQueue,
    ImageProjector,
    MomentumEncoder,
    PixelProjector,
    RoIProjector,
    SampleContrast,
    class_pixel_instances,
    info_nce,
)
from intern_transfer.downa.export import export_adapted
from intern_transfer.downa.frechet import BackboneFeatures, dataset_features, fd_score, frechet_distance
from intern_transfer.downa.multistage import (
    METHODS,
    StageGrid,
    TransferData,
    TransferOutcome,
    TransferPlan,
    run_transfer,
)
from intern_transfer.downa.pipeline import AdaptedTask, adapt_to_task, transfer_task
from intern_transfer.downa.tasks import TASK_TYPES, TransferTask, default_metric
from intern_transfer.downa.vqgan import (
    VQGAN,
    PatchDiscriminator,
    PerceptualLoss,
    VQGANConfig,
    adaptive_weight,
    hinge_d_loss,
)
from intern_transfer.downa.vqgan_io import load_vqgan, save_vqgan, vqgan_fingerprint
from intern_transfer.downa.vqgan_module import VQGANModule

__all__ = [
    "METHODS",
    "TASK_TYPES",
    "VQGAN",
    "AdaptedTask",
    "BackboneFeatures",
    "ContrastSettings",
    "FeatureQueue",
    "ImageProjector",
    "MomentumEncoder",
    "PatchDiscriminator",
    "PerceptualLoss",
    "PixelProjector",
    "RoIProjector",
    "SampleContrast",
    "StageGrid",
    "TransferData",
    "TransferOutcome",
    "TransferPlan",
    "TransferTask",
    "VQGANConfig",
    "VQGANModule",
    "adapt_to_task",
    "adaptive_weight",
    "attach_contrast",
    "class_pixel_instances",
    "dataset_features",
    "default_metric",
    "export_adapted",
    "fd_score",
    "frechet_distance",
    "hinge_d_loss",
    "info_nce",
    "load_vqgan",
    "run_transfer",
    "save_vqgan",
    "transfer_task",
    "vqgan_fingerprint",
]
