"""Up-A-G on two CPU processes (``trainer=ddp_sim``), and ``trainer=multinode``: two "nodes" of one
process each, launched by torchrun on this machine, train exactly as those two local processes do.
Every process has a timeout: a rank that dies or hangs fails the test instead of hanging the suite."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import UPA_G_TINY

pytestmark = pytest.mark.dist

STEPS = ["+trainer.max_steps=2", "stage.callbacks.probe.linear_probe=false"]
TIMEOUT = 240


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "INTERN_CONF_DIR"}
    return env | {"INTERN_ROOT": str(root), "OMP_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _app(run_dir: Path, *overrides: str) -> list[str]:
    return ["-m", "intern_pretrain", *UPA_G_TINY, *STEPS, *overrides, f"hydra.run.dir={run_dir}"]


def _run_nodes(commands: list[list[str]], root: Path, logs: Path) -> None:
    """Start every command, wait for all; any that fails or outlives the timeout fails the test."""
    procs = [
        subprocess.Popen(
            cmd, cwd=root, env=_env(root), stdout=(logs / f"node{i}.log").open("w"), stderr=subprocess.STDOUT
        )
        for i, cmd in enumerate(commands)
    ]
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in procs]
    except subprocess.TimeoutExpired:
        codes = None
    finally:
        for p in procs:
            p.kill()
    tails = "\n".join((logs / f"node{i}.log").read_text()[-1500:] for i in range(len(commands)))
    assert codes == [0] * len(commands), f"exit codes {codes}:\n{tails}"


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "state_dict"
    ]


def test_two_torchrun_nodes_train_as_two_local_processes(intern_root: Path, tmp_path: Path) -> None:
    local, nodes = tmp_path / "local", tmp_path / "nodes"
    _run_nodes([[sys.executable, *_app(local, "trainer=ddp_sim")]], intern_root, tmp_path)
    port = _free_port()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1"]
    rendezvous = ["--master-addr=127.0.0.1", f"--master-port={port}"]
    multinode = _app(nodes, "trainer=multinode", "trainer.accelerator=cpu")
    _run_nodes(
        [[*torchrun, f"--node-rank={i}", *rendezvous, *multinode] for i in range(2)], intern_root, tmp_path
    )
    assert json.loads((local / "summary.json").read_text())["steps"] == 2
    expected, got = _weights(local), _weights(nodes)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=1e-6, msg=key)
