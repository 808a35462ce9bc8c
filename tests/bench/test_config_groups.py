"""The bench app honours its composed trainer, precision, logger and callbacks groups in every cell."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from intern_app import AppError
from intern_bench.__main__ import main
from intern_bench.results import load_results

FAST = ["protocol.sgd.iterations=200", "protocol.lbfgs.max_iter=100", "progress=false", "tsne=false"]
PROBE = ["task=gvb_world_fine", "split=10pct", *FAST]


@pytest.fixture
def autocast_dtypes() -> Iterator[set[torch.dtype]]:
    """The CPU autocast dtypes that module forwards ran under while the test ran."""
    seen: set[torch.dtype] = set()

    def record(module: torch.nn.Module, args: Any, output: Any) -> None:
        if torch.is_autocast_enabled("cpu"):
            seen.add(torch.get_autocast_dtype("cpu"))

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    yield seen
    handle.remove()


def _autocast_keys(cache: Path) -> list[str]:
    """The autocast dtype in the key of every feature-cache entry."""
    sidecars = [json.loads(path.read_text())["key"] for path in (cache / "features").glob("*.json")]
    return sorted(key.get("autocast", "float32") for key in sidecars)


def test_bf16_extracts_probe_features_in_bf16_and_records_it(
    compose_app: Callable[..., Any], tmp_path: Path, autocast_dtypes: set[torch.dtype]
) -> None:
    main(compose_app("bench", [*PROBE, "precision=bf16", f"paths.root_dir={tmp_path}"]))
    (bf16,) = load_results(tmp_path / "result.json")
    assert (bf16.precision, bf16.devices) == ("bf16-mixed", 1)
    assert autocast_dtypes == {torch.bfloat16}
    assert _autocast_keys(tmp_path / "cache") == ["bfloat16", "bfloat16"]  # train and test

    autocast_dtypes.clear()
    main(compose_app("bench", [*PROBE, "precision=fp32", f"paths.root_dir={tmp_path}"]))
    (fp32,) = load_results(tmp_path / "result.json")
    assert fp32.precision == "32-true" and not autocast_dtypes
    assert _autocast_keys(tmp_path / "cache") == ["bfloat16", "bfloat16", "float32", "float32"]  # not reused


def test_tensorboard_logger_holds_the_probe_accuracy(compose_app: Callable[..., Any], tmp_path: Path) -> None:
    """The issue's check: ``precision=bf16 logger=tensorboard`` writes an event file and records bf16."""
    overrides = [*PROBE, "precision=bf16", "logger=tensorboard", f"paths.root_dir={tmp_path}"]
    main(compose_app("bench", overrides))
    (result,) = load_results(tmp_path / "result.json")
    assert result.precision == "bf16-mixed"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    (scalar,) = events.Scalars("accuracy")
    assert scalar.value == pytest.approx(result.metrics["accuracy"]) and scalar.step == 0


def test_csv_logger_writes_each_cells_metrics_in_its_folder(
    compose_app: Callable[..., Any], tmp_path: Path
) -> None:
    overrides = [*PROBE, "splits=[10pct,100pct]", "logger=csv", f"paths.root_dir={tmp_path}"]
    main(compose_app("bench", overrides))
    for split in ("10pct", "100pct"):
        folder = tmp_path / "gvb_world_fine" / split
        (result,) = load_results(folder / "result.json")
        with open(folder / "csv" / "metrics.csv", newline="") as handle:
            (row,) = csv.DictReader(handle)
        assert float(row["accuracy"]) == pytest.approx(result.metrics["accuracy"])
        assert f"split: {split}" in (folder / "csv" / "hparams.yaml").read_text()


MULTI_DEVICE = r"^trainer\.devices=2, trainer\.num_nodes=1: .* one device; choose trainer=cpu or trainer=gpu$"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["task=gvb_world_fine", "trainer=ddp_sim"], MULTI_DEVICE),
        (["task=gvb_world_seg", "trainer=ddp_sim"], MULTI_DEVICE),
        (["task=gvb_world_fine", "trainer.precision=bf16-true"], r"^trainer\.precision=bf16-true: "),
    ],
    ids=["probe-ddp", "dense-ddp", "probe-bf16-true"],
)
def test_a_trainer_the_cell_cannot_use_is_refused_in_one_line(
    compose_app: Callable[..., Any], tmp_path: Path, overrides: list[str], message: str
) -> None:
    with pytest.raises(AppError, match=message) as err:
        main(compose_app("bench", [*overrides, f"paths.root_dir={tmp_path}", *FAST]))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists()  # refused before any data is made


def test_dense_cell_trains_with_the_trainer_and_callbacks_groups(
    compose_app: Callable[..., Any], tmp_path: Path
) -> None:
    overrides = ["task=gvb_world_seg", "split=10pct", "dense.epochs=1", "dense.min_steps=0",
                 "callbacks=default", "+trainer.limit_train_batches=2", "+trainer.limit_test_batches=1",
                 "trainer.log_every_n_steps=1", f"paths.root_dir={tmp_path}", *FAST]  # fmt: skip
    main(compose_app("bench", overrides))
    (result,) = load_results(tmp_path / "result.json")
    assert (result.protocol, result.precision, result.devices) == ("frozen_dense", "32-true", 1)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (0, 2)  # dense.epochs, trainer.limit_*
    with open(tmp_path / "csv" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert any(row.get("lr-AdamW/head") for row in rows)  # the learning-rate monitor
    assert any(row.get("test/miou") for row in rows)


def test_removed_accelerator_key_names_the_trainer_group(
    python_m: Callable[..., Any], tmp_path: Path
) -> None:
    done = python_m("intern_bench", "accelerator=gpu", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("intern_bench: 'accelerator=gpu': accelerator is gone; choose trainer=")
    assert not (tmp_path / "runs").exists()
