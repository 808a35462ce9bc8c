"""The intern_bench app end to end: one probe cell on the embedded world, backbones, errors, reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from intern_app import AppError
from intern_arch import create_model, save_pretrained
from intern_bench.__main__ import main
from intern_bench.results import load_results
from intern_data.splits import SplitManifest

FAST = ["protocol.sgd.iterations=200", "protocol.lbfgs.max_iter=100", "progress=false"]


def test_probe_cell_stores_a_reproducible_result_and_report(
    compose_app: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = create_model("mnb_test", num_classes=0)
    save_pretrained(model, tmp_path / "export")
    overrides = ["task=gvb_world_fine", "split=10pct", f"checkpoint={tmp_path / 'export'}", *FAST]
    cfg = compose_app("bench", [*overrides, f"paths.root_dir={tmp_path}"])
    main(cfg)
    out = capsys.readouterr().out
    assert "export | gvb_world_fine | 10pct | accuracy" in out
    (result,) = load_results(tmp_path / "result.json")
    assert result.config["checkpoint"] == str(tmp_path / "export")
    assert {"accuracy", "val_accuracy", "fpr@0.95", "neglog10_fpr@0.99"} <= set(result.metrics)
    assert 0 <= result.metrics["accuracy"] <= 100
    (manifest_file,) = (tmp_path / "cache" / "world").glob("gvb_world_fine/*/splits/*/10pct-seed0.json")
    assert result.split_hash == SplitManifest.load(manifest_file).keys_hash
    assert (tmp_path / "tsne.png").stat().st_size > 0 and (tmp_path / "report" / "report.md").is_file()
    features = sorted((tmp_path / "cache" / "features").glob("*.safetensors"))
    assert len(features) == 2  # train and test, extracted once

    main(cfg)  # again: same manifest, cached features, same numbers
    (again,) = load_results(tmp_path / "result.json")
    assert again.metrics == result.metrics and again.created > result.created
    assert sorted((tmp_path / "cache" / "features").glob("*.safetensors")) == features


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["backbone=nope:thing"], "nope:thing"),
        (["task=cifar10"], "python -m intern_data shard image_folder"),
        (["suite=everything"], "everything"),
        (["task=gvb_world_det", "split=4shot"], "N-shot regimes (4shot) are defined per class"),
    ],
)
def test_bad_requests_fail_with_one_clear_line(
    compose_app: Callable[..., Any], tmp_path: Path, overrides: list[str], message: str
) -> None:
    with pytest.raises(AppError, match=message.replace("(", r"\(").replace(")", r"\)")):
        main(compose_app("bench", [*overrides, f"paths.root_dir={tmp_path}", *FAST]))


def test_dense_segmentation_cell_trains_a_head_on_the_frozen_backbone(
    compose_app: Callable[..., Any], tmp_path: Path
) -> None:
    overrides = [
        "task=gvb_world_seg",
        "split=10pct",
        "dense.epochs=1",
        "dense.min_steps=0",
        f"paths.root_dir={tmp_path}",
        *FAST,
    ]
    main(compose_app("bench", overrides))
    (result,) = load_results(tmp_path / "result.json")
    assert result.protocol == "frozen_dense" and result.primary_metric == "miou"
    assert 0 <= result.metrics["miou"] <= 100
    budget = {key: result.metrics[key] for key in ("num_train_images", "num_epochs", "num_optimizer_steps")}
    assert budget == {"num_train_images": 100, "num_epochs": 1, "num_optimizer_steps": 7}  # 100 images / 16
    assert (tmp_path / "cache" / "world" / "gvb_world_seg").is_dir()
    assert not (tmp_path / "checkpoints").exists()  # callbacks=none: no checkpoints


def test_a_down_a_method_is_a_protocol_whose_cells_are_ordinary_results(
    compose_app: Callable[..., Any], intern_root: Path, tmp_path: Path
) -> None:
    tiny = ["downa.full.steps=2", "downa.full.lrs=[0.01]", "downa.full.batch_size=16"]
    cfg = [
        "protocol=ft",
        "task=gvb_world_cls",
        "split=10pct",
        f"paths.root_dir={intern_root}",
        *tiny,
        "progress=false",
    ]
    main(compose_app("bench", [*cfg, f"hydra.run.dir={tmp_path}"]))
    (result,) = load_results(tmp_path / "result.json")
    assert result.protocol == "ft" and result.primary_metric == "accuracy"
    assert 0 <= result.metrics["accuracy"] <= 100 and result.metrics["full_lr"] == 0.01
    assert result.metrics["num_train_images"] + result.metrics["num_val_images"] == 90  # 10% of 18 x ~55
