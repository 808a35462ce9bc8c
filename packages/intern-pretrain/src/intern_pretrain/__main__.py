"""``python -m intern_pretrain stage=<stage> model=<model> [overrides]``: run one upstream stage."""

from intern_app import run_app
from intern_pretrain.app.main import main

# Stage keys of the stage configs before they named their module, data and callbacks (an old command
# fails in one line saying what replaced its key), under stage.* and under a phase of stage=upa.
_MOVED_STAGE_KEYS = {
    "losses*": "the objective is a list of terms: stage/upa_g_terms@stage.module.objective=[...] "
    "(conf/stage/upa_g_terms/), experiment=clip_baseline for plain CLIP",
    "optimizer": "stage.module.optimizer (experiment=upa_g_mixed_optimizer: AdamW + SGD)",
    "optimizer.*": "stage.module.optimizer and stage.module.scheduler",
    "optim*": "stage.module.optimizer and stage.module.scheduler",
    "eval*": "stage.callbacks.probe (stage.callbacks.probe=null: no in-training probe)",
    "loss_guard*": "stage.callbacks.loss_guard",
    "augment*": "stage.data (scale, hflip, color, eda_alpha, eda_operations)",
    "text*": "stage.module.text (the vocabulary: stage.data.vocab_size)",
    "byol*": "stage.module (fpn_channels, head_dim, proj_hidden, proj_dim, pred_hidden, roi_size, ...)",
    "levels*": "stage.module.levels, level_probs and canonical_size",
    "views*": "stage.data.views",
    "proposals*": "stage.data.proposals",
    "simsiam*": "stage.module.objective.simsiam",
    "queue_size": "stage.module.objective.sts.queue_size",
    "mlm_prob": "stage.module.objective.mlm.mask_prob",
    "alpha": "the weights of the terms, stage.module.objective.<term>.weight",
    "cl_reduction": "stage.module.objective.cl.reduction",
}
_MOVED_TO_DATA = (
    "img_size",
    "batch_size",
    "val_batch_size",
    "samples_per_epoch",
    "num_workers",
    "shuffle_buffer",
)
MOVED = {
    f"stage.{prefix}{key}": replacement
    for prefix in ("", "upa_g.", "upa_l.")
    for key, replacement in (
        *_MOVED_STAGE_KEYS.items(),
        *((key, f"stage.{prefix}data.{key}") for key in (*_MOVED_TO_DATA, "split")),
        ("embed_dim", f"stage.{prefix}module.embed_dim"),
        ("temperature", f"stage.{prefix}module.temperature"),
        ("max_logit_scale", f"stage.{prefix}module.max_logit_scale"),
        ("base_momentum", f"stage.{prefix}module.base_momentum"),
        ("total_steps", f"stage.{prefix}module.total_steps"),
    )
}

if __name__ == "__main__":
    run_app("pretrain", main, prog="intern_pretrain", moved=MOVED)
