"""FSDP2 on two CPU processes (gloo): the sharded step's loss and gathered gradients equal one process's on
the whole batch, with per-block activation checkpointing on, and so do the stepped model's features taken
outside its forward (``unsharded``); a sharded checkpoint saved and loaded into a fresh sharded model
gives the same weights; the gathered state exports as an ordinary hand-over folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn.functional as F
from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

import intern_arch
from intern_arch.sharding import full_state_dict, shard_model, sharded_blocks, unsharded

from ..conftest import run_ranks

pytestmark = pytest.mark.dist

WORLD = 2


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return intern_arch.create_model("mnb_test", num_classes=4).eval()  # BatchNorm on running statistics


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 32, 32, generator=generator), torch.randint(0, 4, (4,), generator=generator)


def _step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach()


def _rank(rank: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    model = shard_model(_model(), activation_checkpointing=True)
    x, y = _batch()
    half = len(y) // WORLD
    loss = _step(model, x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half])
    dist.all_reduce(loss)
    grads = {name: p.grad.full_tensor() for name, p in model.named_parameters()}
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    with torch.no_grad(), unsharded(model):  # a part called outside forward, as an evaluation callback does
        features = model.forward_head(model.forward_features(x), pre_logits=True)
    stepped = full_state_dict(model)
    dcp.save({"model": get_model_state_dict(model)}, checkpoint_id=f"{out}/sharded")
    fresh = shard_model(intern_arch.create_model("mnb_test", num_classes=4))
    state = {"model": get_model_state_dict(fresh)}
    dcp.load(state, checkpoint_id=f"{out}/sharded")
    set_model_state_dict(fresh, state["model"])
    reloaded = full_state_dict(fresh)
    if rank == 0:
        plain = intern_arch.create_model("mnb_test", num_classes=4)
        plain.load_state_dict(stepped)
        intern_arch.save_pretrained(plain, f"{out}/export")
        torch.save(
            {
                "loss": loss / WORLD,
                "grads": grads,
                "stepped": stepped,
                "reloaded": reloaded,
                "features": features,
            },
            f"{out}/rank0.pt",
        )
    dist.destroy_process_group()


def test_the_policy_shards_each_block_once() -> None:
    model = intern_arch.create_model("mnb_test")
    blocks = sharded_blocks(model)
    assert len(blocks) == sum(len(stage) for stage in model.stages)


def test_two_sharded_ranks_match_one_process_and_export_a_handover(tmp_path: Path) -> None:
    model = _model()
    x, y = _batch()
    loss = _step(model, x, y)
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True)
    run_ranks(_rank, (f"file://{tmp_path}/init", str(tmp_path)), world=WORLD)
    sharded = torch.load(tmp_path / "rank0.pt", weights_only=True)
    torch.testing.assert_close(sharded["features"], features, rtol=0, atol=1e-6)
    torch.testing.assert_close(sharded["loss"], loss, rtol=0, atol=1e-6)
    assert grads.keys() == sharded["grads"].keys()
    for name, grad in grads.items():
        torch.testing.assert_close(sharded["grads"][name], grad, rtol=1e-5, atol=1e-7, msg=name)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(sharded["stepped"][name], value, rtol=1e-5, atol=1e-7, msg=name)
        assert torch.equal(sharded["reloaded"][name], sharded["stepped"][name]), name
    exported = intern_arch.from_pretrained(tmp_path / "export")
    for name, value in exported.state_dict().items():
        assert torch.equal(value, sharded["stepped"][name]), name
