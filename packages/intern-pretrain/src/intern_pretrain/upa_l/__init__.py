"""Up-A-L (paper sec. 5.1.2): selective-search proposals, three views, FPN levels, local BYOL on the frozen
Up-A-G backbone, and its hand-over (neck and box head).

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

from intern_pretrain.upa_l.byol import MLP, LocalBYOL, byol_loss, momentum_at, pool_boxes
from intern_pretrain.upa_l.data import LocalViewsDataModule, local_views_data
from intern_pretrain.upa_l.levels import LEVEL_PROBS, LEVELS, assign_levels, random_levels, size_levels
from intern_pretrain.upa_l.module import UpaLModule
from intern_pretrain.upa_l.proposals import (
    FALLBACK_STAGES,
    compute_proposals,
    filter_mask,
    filter_proposals,
    proposal_settings,
    selective_search,
)
from intern_pretrain.upa_l.sidecar import StaleProposalsError, load_proposals, proposals_path, write_proposals
from intern_pretrain.upa_l.views import AttachProposals, LocalViews, collate_views, sample_proposals

__all__ = [
    "FALLBACK_STAGES",
    "LEVELS",
    "LEVEL_PROBS",
    "MLP",
    "AttachProposals",
    "LocalBYOL",
    "LocalViews",
    "LocalViewsDataModule",
    "StaleProposalsError",
    "UpaLModule",
    "assign_levels",
    "byol_loss",
    "collate_views",
    "compute_proposals",
    "filter_mask",
    "filter_proposals",
    "load_proposals",
    "local_views_data",
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
