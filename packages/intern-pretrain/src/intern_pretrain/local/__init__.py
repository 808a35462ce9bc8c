"""Up-A-L building blocks: selective search proposals, the three views, FPN level assignment, local BYOL.

Example::

    write_proposals("shards/world", "train", min_size=32)          # once, next to the shards
    proposals = load_proposals("shards/world", "train")
    transform = Compose([AttachProposals(proposals), LocalViews(448, 448, num_proposals=8)])
    model = LocalBYOL(backbone)
    batch = collate_views([transform(s) for s in samples])
    levels = random_levels(batch["boxes"][0].shape[:2], generator=generator)
    loss = model(batch["views"], batch["boxes"], levels)
    model.update_target(momentum_at(step, total_steps))
"""

from intern_pretrain.local.byol import MLP, BoxHead, LocalBYOL, byol_loss, momentum_at, pool_boxes
from intern_pretrain.local.levels import LEVEL_PROBS, LEVELS, assign_levels, random_levels, size_levels
from intern_pretrain.local.proposals import (
    FALLBACK_STAGES,
    StaleProposalsError,
    compute_proposals,
    filter_mask,
    filter_proposals,
    load_proposals,
    proposal_settings,
    proposals_path,
    selective_search,
    write_proposals,
)
from intern_pretrain.local.views import AttachProposals, LocalViews, collate_views, sample_proposals

__all__ = [
    "FALLBACK_STAGES",
    "LEVELS",
    "LEVEL_PROBS",
    "MLP",
    "AttachProposals",
    "BoxHead",
    "LocalBYOL",
    "LocalViews",
    "StaleProposalsError",
    "assign_levels",
    "byol_loss",
    "collate_views",
    "compute_proposals",
    "filter_mask",
    "filter_proposals",
    "load_proposals",
    "momentum_at",
    "pool_boxes",
    "proposal_settings",
    "proposals_path",
    "random_levels",
    "sample_proposals",
    "selective_search",
    "size_levels",
    "write_proposals",
]
