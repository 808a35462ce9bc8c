"""Issue 12, items 2, 5a, 5c and 7: a regime's draws and their spread, the pixels baseline, the cost said
before a run and run folders named after the model measured. Tiny images and ``protocol=fast`` only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from intern_app import AppError
from intern_arch import create_model, save_pretrained
from intern_bench.__main__ import main
from intern_bench.cost import lbfgs_fits
from intern_bench.report.selection import aggregate
from intern_bench.report.tables import format_stat, pivot
from intern_bench.results import BenchResult, load_results
from intern_bench.runner import describe_model, run_bench
from intern_transfer.backbones import load_backbone
from intern_transfer.probe import LBFGSSearch

COLOURS = {"red": (170, 70, 70), "green": (70, 170, 70), "blue": (70, 70, 170)}


def write_image_folder(root: Path, per_class: dict[str, int], size: int = 32) -> None:
    """``root/<split>/<class>/<n>.png``: noisy tinted squares, one tint per class."""
    rng = np.random.default_rng(0)
    for split, count in per_class.items():
        for name, tint in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                pixels = rng.normal(tint, 90, (size, size, 3)).clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{index:02d}.png")


def test_an_image_folder_is_benchmarked_with_its_spread_from_the_command_line(
    python_m: Callable[..., Any], tmp_path: Path
) -> None:
    write_image_folder(tmp_path / "tints", {"train": 20, "test": 5})
    shards = tmp_path / "shards" / "tints"
    run = python_m("intern_data", "shard", "image_folder", str(tmp_path / "tints"), "--out", str(shards))
    assert run.returncode == 0, run.stderr
    run = python_m("intern_bench", "task=shards", f"task.root={shards}", "backbone=pixels",
                   "splits=[10pct]", "split_seeds=[0,1,2]", "protocol=fast", "progress=false",
                   f"paths.root_dir={tmp_path}")  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "model: pixels (backbone=pixels)" in lines
    (cost,) = [line for line in lines if line.startswith("cost: 3 probe cell(s) of protocol fast")]
    assert lines.index(cost) < min(i for i, line in enumerate(lines) if line.startswith("pixels | tints"))
    report = Path(lines[-1].removeprefix("report: "))
    assert report.parent.parent.name == "pixels"  # runs/bench/<task>/<model measured>/<time>
    results = load_results(report.parent)
    assert sorted(r.split_seed for r in results) == [0, 1, 2]
    assert {(r.model, r.task, r.split, r.protocol) for r in results} == {("pixels", "tints", "10pct", "fast")}
    values = [r.value for r in results]
    cell = f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"
    assert f"| pixels | {cell} |" in (report / "report.md").read_text()
    run = python_m("intern_bench", "task=shards", f"task.root={shards}", "backbone=pixels", "split=1shot",
                   "protocol=fast", f"paths.root_dir={tmp_path}")  # fmt: skip
    assert run.returncode == 2 and "split=1shot: 3 training samples and no class with two" in run.stderr


def _result(value: float, split_seed: int, split: str = "10pct") -> BenchResult:
    return BenchResult(
        model="m", model_fingerprint="f", task="t", task_type="classification", split=split,
        split_hash="h", seed=0, protocol="fast", metrics={"accuracy": value}, primary_metric="accuracy",
        higher_is_better=True, split_seed=split_seed, created=f"2026-01-01T00:00:0{split_seed}+00:00",
    )  # fmt: skip


def test_the_spread_is_the_mean_and_sample_standard_deviation_of_the_draws() -> None:
    values = [61.25, 70.0, 66.5, 58.0]
    results = [_result(v, seed) for seed, v in enumerate(values)] + [_result(80.0, 0, "100pct")]
    stats = aggregate(results)
    ten = stats[("m", ("t", "fast", "accuracy"), "10pct")]
    assert (ten.n, ten.mean) == (4, pytest.approx(np.mean(values)))
    assert ten.std == pytest.approx(np.std(values, ddof=1))
    assert stats[("m", ("t", "fast", "accuracy"), "100pct")].std == 0.0  # one draw: no spread
    table = pivot(results)
    assert format_stat(table.cells[("m", ("t", "fast", "accuracy"), "10pct")]) == "63.9 ± 5.3"
    assert format_stat(table.cells[("m", ("t", "fast", "accuracy"), "100pct")]) == "80.0"


def test_pixels_features_are_the_resized_standardised_image() -> None:
    loaded = load_backbone("pixels", img_size=8)
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    x = loaded.preprocess(image)
    resized = torch.nn.functional.interpolate(image[None].float() / 255, size=(8, 8), mode="bilinear",
                                              antialias=True, align_corners=False)[0]  # fmt: skip
    torch.testing.assert_close(x, (resized - 0.5) / 0.5, atol=1e-2, rtol=0)
    assert loaded.feature_dim == 3 * 8 * 8
    torch.testing.assert_close(loaded.model(x[None])[0], x.flatten())


def test_pixels_on_a_dense_task_is_refused_naming_why(
    compose_app: Callable[..., Any], tmp_path: Path
) -> None:
    cfg = compose_app("bench", ["backbone=pixels", "task=gvb_world_det", f"paths.root_dir={tmp_path}"])
    with pytest.raises(AppError, match=r"backbone=pixels .* classification tasks; not for gvb_world_det"):
        main(cfg)


def test_run_folder_and_banner_name_the_model_measured(
    compose_app: Callable[..., Any], tmp_path: Path
) -> None:
    def composed(*overrides: str) -> tuple[str, str]:
        cfg = compose_app("bench", [*overrides, f"paths.root_dir={tmp_path}"])
        return Path(str(cfg.hydra.run.dir)).parent.name, describe_model(cfg)

    assert composed("backbone=efficientnet_lite0") == (
        "efficientnet_lite0", "model: efficientnet_lite0 (backbone=efficientnet_lite0)"
    )  # fmt: skip
    save_pretrained(create_model("mnb_test", num_classes=0), tmp_path / "export", stage="upa_g")
    folder, banner = composed(f"checkpoint={tmp_path / 'export'}")
    assert folder == "mnb_test-upa_g"
    assert banner == f"model: export (checkpoint={tmp_path / 'export'}, a mnb_test-upa_g hand-over)"
    assert composed("backbone=timm:resnet18")[0] == "timm_resnet18"
    assert composed() == ("mnb_test", "model: mnb_test (random init, model=mnb_test)")


class _CellStarted(Exception):
    pass


def test_the_cost_is_announced_before_the_first_cell(compose_app: Callable[..., Any], tmp_path: Path) -> None:
    cfg = compose_app("bench", ["task=gvb_world_fine", "split=10pct", "split_seeds=[0,1]", "protocol=fast",
                                f"paths.root_dir={tmp_path}"])  # fmt: skip
    plain = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    events: list[str] = []

    def first_cell(out_dir: Path, **kwargs: Any) -> Any:
        events.append("cell")
        raise _CellStarted

    with pytest.raises(_CellStarted):
        run_bench(plain, tmp_path / "run", first_cell, announce=events.append)
    assert len(events) == 2 and events[1] == "cell"
    assert events[0].startswith("cost: 2 probe cell(s) of protocol fast, each an L-BFGS search of 6 fits")
    assert lbfgs_fits(LBFGSSearch()) == 15  # the paper's search: 7 coarse fits, then 2 x 4 halvings


@pytest.fixture(autouse=True)
def _fast_torch(one_thread: None) -> None:
    """Torch on one thread for these runs."""
