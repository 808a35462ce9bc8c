"""Sharded data parallelism for INTERN's models with torch's FSDP2 (``fully_shard``), on CPU and GPU alike.

The wrap policy shards each block on its own (MetaNet's MBConv, Fused-MBConv and transformer blocks,
ResNet's bottlenecks, the text tower's BERT layers), then the rest of the model as one unit, so a rank
gathers one block's weights at a time. ``full_state_dict`` gathers the whole model again on rank 0
(every rank takes part), which is what a hand-over folder holds: a sharded model exports like any other.
Activation checkpointing uses the models' own switches (timm's ``set_grad_checkpointing``, the text
tower's ``gradient_checkpointing_enable``), which recompute each block in the backward pass and keep
every weight's name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator

from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import FSDPModule, fully_shard, register_fsdp_forward_method
from torch.distributed.tensor import DTensor

__all__ = [
    "BLOCK_TYPES",
    "enable_activation_checkpointing",
    "full_state_dict",
    "is_sharded",
    "shard_model",
    "sharded_blocks",
    "unsharded",
]

BLOCK_TYPES = frozenset(
    {"MBConv", "FusedMBConv", "TransformerBlock", "DownsampleTransformerBlock", "Bottleneck", "BertLayer"}
)
"""Class names of the modules sharded one by one (names, so the text tower's class needs no import)."""


def sharded_blocks(model: nn.Module, block_types: Collection[str] = BLOCK_TYPES) -> list[nn.Module]:
    """The modules of ``model`` the policy shards on their own, outermost first, none inside another."""
    found: list[nn.Module] = []
    inside: set[int] = set()
    for module in model.modules():
        if id(module) in inside:
            continue
        if type(module).__name__ in block_types:
            found.append(module)
            inside.update(id(m) for m in module.modules())
    return found


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Switch on per-block recomputation in every part of ``model`` that offers it; returns how many."""
    switched = 0
    for module in model.modules():
        if hasattr(module, "set_grad_checkpointing"):
            module.set_grad_checkpointing(True)
            switched += 1
        elif hasattr(module, "gradient_checkpointing_enable") and getattr(
            module, "supports_gradient_checkpointing", False
        ):
            module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            switched += 1
    return switched


def shard_model(
    model: nn.Module,
    mesh: DeviceMesh | None = None,
    *,
    block_types: Collection[str] = BLOCK_TYPES,
    activation_checkpointing: bool = False,
    reshard_after_forward: bool = True,
    forward_methods: Collection[str] = (),
) -> nn.Module:
    """Shard ``model`` in place over ``mesh`` (default: every rank of the default process group): each
    block, then the model as a whole (which takes every parameter outside the blocks).

    ``forward_methods``: methods of ``model`` that gather its own
    parameters the way ``forward`` does (a LightningModule's ``training_step``, which Lightning calls
    instead of ``forward``).

    Raises:
        ValueError: ``model`` has no block of ``block_types`` (sharding it whole would gather it whole).
    """
    blocks = sharded_blocks(model, block_types)
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no module of the block types {sorted(block_types)}")
    if activation_checkpointing:
        enable_activation_checkpointing(model)
    for block in blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard_after_forward)
    for name in forward_methods:
        register_fsdp_forward_method(model, name)
    return model


def is_sharded(model: nn.Module) -> bool:
    """Whether any parameter of ``model`` is a sharded tensor (the model went through :func:`shard_model`)."""
    return any(isinstance(p, DTensor) for p in model.parameters())


@contextlib.contextmanager
def unsharded(model: nn.Module) -> Iterator[nn.Module]:
    """Gather the parameters outside the blocks of a sharded ``model`` for code that is not its forward
    (an evaluation callback calling one part); the blocks gather their own when called. Every rank must
    enter it, after the model's first forward (FSDP sets itself up from the root's). A plain model
    passes through."""
    if not isinstance(model, FSDPModule):
        yield model
        return
    model.unshard()
    try:
        yield model
    finally:
        model.reshard()


def full_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The whole state dict of a sharded (or plain) model as CPU tensors under their unsharded names.
    Every rank must call it (it gathers); rank 0 gets the full dict, the others an empty one (torch's
    ``cpu_offload`` rule, so only one process holds the whole model in memory)."""
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
