"""Distributed evaluation of the adaptation modules is exact: 2 gloo processes on an odd number of
samples give the same metric values as 1 process, with no padded duplicate reaching a metric.

Lightning's default ``DistributedSampler`` (inserted by ``use_distributed_sampler=True``) makes every
rank's share the same length by repeating samples from the start of the set: 7 samples on 2 ranks
become 8, and the repeated image is counted twice by every metric. The DataModule here turns that
off and builds Lightning's maintained ``UnrepeatedDistributedSampler`` per rank (it needs the rank,
which only exists inside the launched process), so ranks see 4 and 3 samples. torchmetrics then syncs
the metric states inside ``compute()``.

The trainer uses ``DDPStrategy(start_method="fork")`` (Lightning's ``ddp_fork``: the ``ddp_spawn``
launcher with fork instead of spawn), so the processes inherit this module's classes and the model
without pickling them, and start in a fraction of a second.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from intern_arch import create_model
from intern_bench.metrics import SegmentationMIoU
from intern_data.shards.collate import collate_samples
from intern_data.shards.transforms import classification_transform, segmentation_transform
from intern_data.world import generate
from intern_transfer.adapt import AdaptModule, ClassificationAdapter, SegmentationAdapter

pytestmark = pytest.mark.dist

NUM_SAMPLES, BATCH, SIZE = 7, 2, 32


class SampleCount(Metric):
    """How many samples reached ``update``, and in how many processes (summed on ``compute``)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("count", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("processes", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, preds: Any, target: Tensor) -> None:
        self.count += len(target)
        self.processes = torch.ones_like(self.processes)

    def compute(self) -> dict[str, Tensor]:
        return {"samples": self.count.clone(), "processes": self.processes.clone()}


class Samples(Dataset):
    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.samples[index]


class EvalData(L.LightningDataModule):
    """One validation loader; with several processes each rank gets its unpadded share."""

    def __init__(self, dataset: Samples, padded: bool = False) -> None:
        super().__init__()
        self.dataset = dataset
        self.padded = padded  # leave the sampler to Lightning (use_distributed_sampler=True)

    def val_dataloader(self) -> DataLoader:
        if self.padded:
            return DataLoader(self.dataset, batch_size=BATCH, collate_fn=collate_samples)
        world, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = UnrepeatedDistributedSampler(self.dataset, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(self.dataset, batch_size=BATCH, sampler=sampler, collate_fn=collate_samples)


def samples(task: str) -> Samples:
    if task == "segmentation":
        name, tf = "gvb_world_seg", segmentation_transform(SIZE, train=False)
    else:
        name, tf = "gvb_world_cls", classification_transform(SIZE, train=False)
    return Samples([tf(s) for s in generate(name, "val", count=NUM_SAMPLES, img_size=SIZE)])


def module(task: str) -> AdaptModule:
    torch.manual_seed(0)
    if task == "segmentation":
        metrics = MetricCollection({"miou": SegmentationMIoU(8), "count": SampleCount()})
        return SegmentationAdapter(create_model("mnb_test"), 8, metrics, fuse_channels=16)
    metrics = MetricCollection({"accuracy": MulticlassAccuracy(18, average="micro"), "count": SampleCount()})
    return ClassificationAdapter(create_model("mnb_test"), 18, metrics)


def validate(model: AdaptModule, data: EvalData, devices: int) -> dict[str, float]:
    strategy: Any = DDPStrategy(start_method="fork", process_group_backend="gloo") if devices > 1 else "auto"
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        use_distributed_sampler=data.padded,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    [logged] = trainer.validate(model, datamodule=data, verbose=False)
    return logged


def test_lightning_default_sampler_pads_and_the_unrepeated_one_does_not() -> None:
    data = Samples([{"i": i} for i in range(NUM_SAMPLES)])
    padded = [list(DistributedSampler(data, 2, rank, shuffle=False)) for rank in range(2)]
    unpadded = [list(UnrepeatedDistributedSampler(data, 2, rank, shuffle=False)) for rank in range(2)]
    assert sum(map(len, padded)) == NUM_SAMPLES + 1 and padded[1][-1] == padded[0][0]
    assert sorted(padded[0] + padded[1]) != list(range(NUM_SAMPLES))
    assert sorted(unpadded[0] + unpadded[1]) == list(range(NUM_SAMPLES))


@pytest.mark.parametrize(("task", "key"), [("segmentation", "val/miou"), ("classification", "val/accuracy")])
def test_two_processes_evaluate_exactly_like_one(task: str, key: str) -> None:
    data = EvalData(samples(task))
    model = module(task)
    two = validate(model, data, devices=2)  # first: the processes fork from a parent that ran no model yet
    one = validate(model, data, devices=1)
    assert one["val/samples"] == two["val/samples"] == NUM_SAMPLES
    assert (one["val/processes"], two["val/processes"]) == (1, 2)
    assert two[key] == one[key], (two, one)
    assert two["val/loss"] == pytest.approx(one["val/loss"], rel=1e-5)  # float sums in another order


def test_lightning_default_sampler_counts_a_padded_sample_twice() -> None:
    """The failure the unpadded sampler prevents, seen through the same metrics."""
    data = EvalData(samples("classification"), padded=True)
    padded = validate(module("classification"), data, devices=2)
    assert padded["val/samples"] == NUM_SAMPLES + 1
