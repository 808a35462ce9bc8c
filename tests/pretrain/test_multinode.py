"""Up-A-G across processes: ``trainer=multinode`` (two "nodes" of one process each, launched by torchrun
on this machine) and ``trainer=fsdp_sim`` (FSDP2 over two CPU processes, killed after step 3 and resumed
from its sharded checkpoint folder) train to the same weights. Every process runs in its own session
with a timeout: a rank that dies or hangs fails the test instead of hanging the suite, and no rank
outlives it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from intern_transfer.runs import checkpoint_problem

from ..conftest import KILLER, UPA_G_TINY

pytestmark = pytest.mark.dist

STEPS = [
    "+trainer.max_steps=4",
    "callbacks.step_checkpoint.every_n_train_steps=2",
    "+trainer.limit_val_batches=0",  # training alone (tests/arch/test_sharding.py evaluates a sharded model)
    "stage.callbacks.probe=null",
    "progress=false",
]
TIMEOUT = 240


def _env(root: Path, pythonpath: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "INTERN_CONF_DIR"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return env | {"INTERN_ROOT": str(root), "OMP_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _app(run_dir: Path, *overrides: str) -> list[str]:
    return ["-m", "intern_pretrain", *UPA_G_TINY, *STEPS, *overrides, f"hydra.run.dir={run_dir}"]


def _run(
    commands: list[list[str]],
    root: Path,
    logs: Path,
    codes: list[int] | None = None,
    pythonpath: Path | None = None,
) -> None:
    """Start every command at once, each in a session of its own, and wait for all; any that exits with
    other than its ``codes`` entry (default 0) or outlives the timeout fails the test. Whatever they
    started is killed afterwards."""
    procs = [
        subprocess.Popen(
            cmd,
            cwd=root,
            env=_env(root, pythonpath),
            stdout=(logs / f"node{i}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        for i, cmd in enumerate(commands)
    ]
    try:
        got = [p.wait(timeout=TIMEOUT) for p in procs]
    except subprocess.TimeoutExpired:
        got = None
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
    tails = "\n".join((logs / f"node{i}.log").read_text()[-1500:] for i in range(len(commands)))
    assert got == (codes or [0] * len(commands)), f"exit codes {got}:\n{tails}"


def _export(run_dir: Path) -> dict[str, torch.Tensor]:
    export = run_dir / "export"
    return {**load_file(export / "model.safetensors"), **load_file(export / "text" / "model.safetensors")}


def _assert_same(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], atol: float) -> None:
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=atol, msg=key)


def test_torchrun_nodes_and_a_killed_sharded_run_train_alike(intern_root: Path, tmp_path: Path) -> None:
    """Four steps of Up-A-G two ways: DDP on two torchrun "nodes" of one process (``trainer=multinode``),
    and FSDP2 on two local processes (``trainer=fsdp_sim``: every block sharded over the ranks, then
    the rest, with per-block activation checkpointing) killed after step 3 and resumed from the sharded
    folder of step 2. Both export the same weights, which is what two local DDP processes train (FSDP2
    and ``trainer=ddp_sim`` agree bit for bit; not rerun here, to keep the suite short)."""
    nodes, sharded = tmp_path / "nodes", tmp_path / "fsdp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1"]
    rendezvous = ["--master-addr=127.0.0.1", f"--master-port={_free_port()}"]
    multinode = _app(nodes, "trainer=multinode", "trainer.accelerator=cpu")
    (tmp_path / "killer.py").write_text(textwrap.dedent(KILLER))
    local = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    fsdp = [*local, *_app(sharded, "trainer=fsdp_sim", "trainer.strategy.activation_checkpointing=true")]
    kill = "+callbacks.kill={_target_: killer.KillAt, step: 3}"
    # the two nodes and the run to be killed at once: their imports overlap the others' waits
    commands = [[*torchrun, f"--node-rank={i}", *rendezvous, *multinode] for i in range(2)] + [[*fsdp, kill]]
    _run(commands, intern_root, tmp_path, codes=[0, 0, 1], pythonpath=tmp_path)
    assert json.loads((nodes / "summary.json").read_text())["steps"] == 4
    step = sharded / "checkpoints" / "step.ckpt"
    assert step.is_dir() and checkpoint_problem(step) is None, "no whole sharded checkpoint of step 2"
    assert sorted(p.name for p in step.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert not (sharded / "export").exists()
    _run([fsdp], intern_root, tmp_path)
    summary = json.loads((sharded / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["resumed_from"] is not None
    _assert_same(_export(sharded), _export(nodes), atol=1e-6)
