"""Sharded data parallelism for the stages: FSDP2 over every rank, the same code on CPU and GPU.

:class:`ShardedStrategy` is Lightning's ``ModelParallelStrategy`` with its whole device mesh used for
data parallelism (no tensor parallelism), which runs on CPU processes (gloo) as on GPUs (NCCL), unlike
Lightning's ``FSDPStrategy`` (FSDP1, GPU only). The strategy sets up the mesh; the module shards itself
in ``configure_model`` (:meth:`~intern_pretrain.core.StageModule.configure_model`): each block on its own,
then the rest (:func:`intern_arch.sharding.shard_model`), optionally with per-block activation
checkpointing; ``bf16-mixed`` is autocast over fp32 weights, as under DDP.

BatchNorm's running statistics are buffers, which FSDP neither shards nor synchronises: after each
training step's forward every rank takes rank 0's (DDP broadcasts them too), so rank 0 exports what it
would alone and a checkpoint, which saves a replicated buffer from one rank only, resumes every rank
exactly.

A checkpoint is a folder of per-rank shards (``save_distributed_checkpoint``, the default), written
under a temporary name and swapped in once every rank has written, so a kill never leaves a partial
folder under a checkpoint's name; ``save_distributed_checkpoint=false`` gathers one file on rank 0.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["ShardedStrategy", "broadcast_running_statistics"]


class ShardedStrategy(ModelParallelStrategy):
    """FSDP2 data parallelism over all ranks of all nodes.

    Args:
        activation_checkpointing: recompute each block in the backward pass (activations of one block
            at a time instead of all of them).
        **kwargs: ``ModelParallelStrategy``'s ``save_distributed_checkpoint``, ``process_group_backend``,
            ``timeout``.
    """

    def __init__(self, activation_checkpointing: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation_checkpointing = activation_checkpointing

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        self._tensor_parallel_size = 1
        super().setup_environment()

    def on_train_start(self) -> None:
        """On a resume, start the training data again from the restored position. This strategy restores
        a checkpoint after its setup, where ``configure_optimizers`` (``estimated_stepping_batches``)
        already made Lightning start the data iterator from the beginning and fetch a batch (Lightning
        issue #20550); without this the first batch after a resume would be that stale one."""
        super().on_train_start()
        assert self.lightning_module is not None
        loop = self.lightning_module.trainer.fit_loop
        fetcher = getattr(loop, "_data_fetcher", None)
        if loop.restarting and fetcher is not None:
            iter(fetcher)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        output = super().training_step(*args, **kwargs)
        assert self.lightning_module is not None
        broadcast_running_statistics(self.lightning_module)
        return output

    def save_checkpoint(
        self, checkpoint: dict[str, Any], filepath: str | Path, storage_options: Any | None = None
    ) -> None:
        if not self._save_distributed_checkpoint:
            super().save_checkpoint(checkpoint, filepath, storage_options)
            return
        path = Path(self.broadcast(str(filepath)))
        staging = path.with_name(f"{path.name}.partial")
        if self.global_rank == 0:
            shutil.rmtree(staging, ignore_errors=True)  # a kill's leftover
        self.barrier("sharded_checkpoint_staging")
        super().save_checkpoint(checkpoint, staging, storage_options)
        self.barrier("sharded_checkpoint_written")
        if self.global_rank == 0:
            _swap_in(staging, path)
        self.barrier("sharded_checkpoint_swapped")


def broadcast_running_statistics(module: nn.Module, src: int = 0) -> None:
    """Every rank's BatchNorm buffers set to rank ``src``'s: one broadcast per device and dtype."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = defaultdict(list)
    for norm in module.modules():
        if isinstance(norm, _BatchNorm):
            for buffer in norm.buffers():
                groups[buffer.device, buffer.dtype].append(buffer)
    for buffers in groups.values():
        flat = torch.cat([b.detach().reshape(-1) for b in buffers])
        dist.broadcast(flat, src=src)
        for buffer, value in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
            # `.data`: the step's graph saved the statistics (unused by a training-mode backward), and a
            # tracked in-place change would fail its version check
            buffer.data.copy_(value.view_as(buffer))


def _swap_in(staging: Path, path: Path) -> None:
    """Put the complete folder ``staging`` under ``path``'s name, replacing what is there."""
    if path.is_dir():
        retired = path.with_name(f"{path.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        path.rename(retired)
        staging.rename(path)
        shutil.rmtree(retired)
    else:
        path.unlink(missing_ok=True)
        staging.rename(path)
