"""``benchmarks/gpu_suite.sh --dry-run``: the prepared GPU measurement runs end to end on the CPU, every
section at tiny sizes, through the same wrapper (source tree on ``PYTHONPATH``) a lent GPU uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ["arch", "upa", "mnb15", "data", "probe", "compile"]


@pytest.mark.usefixtures("one_thread")
def test_dry_run_measures_every_section(tmp_path: Path) -> None:
    env = os.environ | {"PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--dry-run", "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    suite = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert suite["mode"] == "dry run" and list(suite["sections"]) == SECTIONS
    sections = suite["sections"]
    assert {row["model"] for row in sections["arch"]["rows"]} == {"mnb_test", "resnet18"}
    assert all(row["train"] > 0 and row["infer"] > 0 for row in sections["arch"]["rows"])
    assert sections["upa"]["full_over_clip"] > 0
    assert sections["mnb15"]["export_equal"] is True and sections["mnb15"]["images_s"] > 0
    assert set(sections["data"]["samples_s"]) == {
        "bare decode (CPU)", "per-sample transform (CPU)", "batched transform on cpu",
        "batched decode and transform on cpu",
    }  # fmt: skip
    assert sections["probe"]["lbfgs"]["test_accuracy"] > 0.5
    assert "skipped" in sections["compile"]  # measured on a GPU only
    table = (tmp_path / "gpu_suite.md").read_text()
    assert all(f"## {name}" in table for name in SECTIONS)
