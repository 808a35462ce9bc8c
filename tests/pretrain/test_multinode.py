"""Up-A-G across processes: ``trainer=multinode`` (two "nodes" of one process each, launched by torchrun
on this machine) and ``trainer=fsdp_sim`` (FSDP2 over two CPU processes, killed after step 3 and resumed
from its sharded checkpoint folder) train to the same weights. Every process runs in its own session
with a timeout (``app_processes``): a rank that dies or hangs fails the test instead of hanging the
suite, and no rank outlives it."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from intern_transfer.runs import checkpoint_problem

from ..conftest import KILLER, UPA_G_TINY, app_command, app_processes

pytestmark = pytest.mark.dist

STEPS = [
    "+trainer.max_steps=4",
    "callbacks.step_checkpoint.every_n_train_steps=2",
    "+trainer.limit_val_batches=0",  # training alone (tests/arch/test_sharding.py evaluates a sharded model)
    "stage.callbacks.probe=null",
    "progress=false",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _app(run_dir: Path, *overrides: str) -> list[str]:
    return app_command("intern_pretrain", run_dir, *UPA_G_TINY, *STEPS, *overrides)


def _export(run_dir: Path) -> dict[str, torch.Tensor]:
    export = run_dir / "export"
    return {**load_file(export / "model.safetensors"), **load_file(export / "text" / "model.safetensors")}


def test_torchrun_nodes_and_a_killed_sharded_run_train_alike(intern_root: Path, tmp_path: Path) -> None:
    """Four steps of Up-A-G two ways: DDP on two torchrun "nodes" of one process (``trainer=multinode``),
    and FSDP2 on two local processes (``trainer=fsdp_sim``: every block sharded over the ranks, then
    the rest, with per-block activation checkpointing) killed after step 3 and resumed from the sharded
    folder of step 2 under ``torchrun --standalone``. Both export the same weights, which is what two
    local DDP processes train (FSDP2 and ``trainer=ddp_sim`` agree bit for bit; not rerun here, to keep
    the suite short)."""
    nodes, sharded = tmp_path / "nodes", tmp_path / "fsdp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1"]
    rendezvous = ["--master-addr=127.0.0.1", f"--master-port={_free_port()}"]
    multinode = _app(nodes, "trainer=multinode", "trainer.accelerator=cpu")[1:]
    (tmp_path / "killer.py").write_text(textwrap.dedent(KILLER))
    fsdp = _app(sharded, "trainer=fsdp_sim", "trainer.strategy.activation_checkpointing=true")
    kill = "+callbacks.kill={_target_: killer.KillAt, step: 3}"
    # the two nodes and the run to be killed (Lightning starts its rank 1) at once: their imports overlap
    commands = [[*torchrun, f"--node-rank={i}", *rendezvous, *multinode] for i in range(2)] + [[*fsdp, kill]]
    with app_processes(commands, intern_root, tmp_path, expect=[0, 0, -9], pythonpath=tmp_path):
        pass
    assert json.loads((nodes / "summary.json").read_text())["steps"] == 4
    step = sharded / "checkpoints" / "step.ckpt"
    assert step.is_dir() and checkpoint_problem(step) is None, "no whole sharded checkpoint of step 2"
    assert sorted(p.name for p in step.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert not (sharded / "export").exists()
    standalone = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    # resumed under torchrun: both ranks start at once (Lightning starts rank 1 after rank 0's set-up)
    with app_processes([[*standalone, *fsdp[1:]]], intern_root, tmp_path, expect=[0]):
        pass
    summary = json.loads((sharded / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["resumed_from"] is not None
    expected, got = _export(nodes), _export(sharded)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=1e-6, msg=key)
