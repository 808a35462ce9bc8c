"""The intern_transfer app: Down-A's multi-stage fine-tuning end to end on a small world task (VQ-GAN,
reconstructions, FD scores, both stages, the export), the older method names, and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import intern_arch
from intern_app import AppError
from intern_transfer.__main__ import main, method_name

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "split=10pct",
    "progress=false",
    "downa.head.steps=2",
    "downa.head.lrs=[0.1]",
    "downa.full.steps=2",
    "downa.full.lrs=[0.01]",
    "downa.fd_images=40",
    "downa.vqgan.steps=3",
    "downa.vqgan.disc_start=2",
    "downa.vqgan.batch_size=4",
    "downa.vqgan.img_size=32",
    "downa.vqgan.model.channels=8",
    "downa.vqgan.model.embed_dim=8",
    "downa.vqgan.model.codebook_size=16",
    "downa.vqgan.model.disc_channels=8",
    "downa.contrastive.queue_size=32",
]


def test_mf_adapts_and_exports_a_hand_over(
    compose_app: Callable[..., Any], intern_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream = intern_root / "cache" / "world"
    cfg = compose_app(
        "transfer",
        [
            *TINY,
            f"paths.root_dir={intern_root}",
            f"hydra.run.dir={tmp_path}",
            "downa.vqgan.data=gvb_world_fine",
        ],
    )
    main(cfg)
    out = capsys.readouterr().out
    assert "method mf from mnb_test" in out and "fd_reconstructed" in out
    record = json.loads((tmp_path / "result.json").read_text())
    assert set(record["chosen"]) == {"head", "full"} and 0 <= record["test"]["accuracy"] <= 1
    assert set(record["fd"]) == {"fd_original", "fd_reconstructed"}
    assert (Path(record["vqgan"]) / "model.safetensors").is_file() and upstream.is_dir()
    assert (tmp_path / "reconstructions.png").stat().st_size > 0
    handover = intern_arch.load_handover(tmp_path / "export")
    assert "heads/gvb_world_cls" in handover.parts


@pytest.mark.parametrize(("old", "new"), [("probe", "lp"), ("finetune", "ft"), ("down_a", "mf")])
def test_older_method_names_still_work(old: str, new: str) -> None:
    assert method_name(old) == new


def test_unknown_method(compose_app: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AppError) as raised:
        main(compose_app("transfer", ["method=linear"]))
    assert str(raised.value) == (
        "unknown method 'linear' (choose from: lp, ft, mf, probe (= lp), finetune (= ft), down_a (= mf))"
    )
    assert capsys.readouterr().out == ""


def test_unknown_task_fails_with_one_line(python_m: Callable[..., Any], tmp_path: Path) -> None:
    run = python_m("intern_transfer", "task=gvb_world_nope", f"paths.root_dir={tmp_path}")
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "gvb_world_nope" in lines[0]
