"""The GV-B task registry read from the task configs: Table 31, the world tasks, the packaged tasks,
suites, a user's shard folder as a task, and the `list` and `task new` verbs."""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from intern_app import config_dir
from intern_bench.cli import main as verbs
from intern_data.cli import build_parser as shard_parser
from intern_data.readers import READERS, open_reader
from intern_data.tasks import (
    TaskConfigError,
    UnknownSuiteError,
    UnknownTaskError,
    load_tasks,
    suites,
    task_from_config,
)
from intern_data.tasks import get_suite as suite_of
from intern_data.tasks import get_task as task_of
from intern_data.world import cache_folder, get_dataset

# Paper Table 31, row by row: dataset, classes, train size, test size, evaluation metric.
TABLE_31 = [
    ("CIFAR-10", "10", 50_000, 10_000, "accuracy"),
    ("CIFAR-100", "100", 50_000, 10_000, "accuracy"),
    ("Food-101", "101", 75_750, 25_250, "accuracy"),
    ("Oxford-IIIT Pets", "37", 3_680, 3_669, "mean per class"),
    ("Oxford 102 Flower", "102", 2_040, 6_149, "mean per class"),
    ("SUN397", "397", 19_850, 19_850, "accuracy"),
    ("Stanford Cars", "196", 8_144, 8_041, "accuracy"),
    ("DTD", "47", 3_760, 1_880, "accuracy"),
    ("Caltech-101", "102", 3_060, 6_085, "mean per class"),
    ("FGVC-Aircraft", "100", 6_667, 3_333, "mean per class"),
    ("SVHN", "10", 73_257, 26_032, "accuracy"),
    ("EuroSAT", "10", 21_600, 5_400, "accuracy"),
    ("RESISC45", "45", 25_200, 6_300, "accuracy"),
    ("Retinopathy", "5", 46_032, 42_670, "accuracy"),
    ("FER2013", "7", 28_709, 3_589, "accuracy"),
    ("UCF101", "101", 9_537, 3_696, "accuracy"),
    ("GTSRB", "43", 39_209, 12_630, "accuracy"),
    ("PatchCamelyon", "2", 294_912, 32_768, "accuracy"),
    ("ImageNet", "1000", 1_281_167, 50_000, "accuracy"),
    ("Kinetics-700", "700", 542_285, 34_819, "accuracy"),
    ("VOC07+12", "20", 16_551, 4_952, "AP50"),
    ("WIDER FACE", "2", 12_880, 3_226, "AP50"),
    ("CityPersons", "-", 2_975, 500, "MR-2"),
    ("VOC2012", "-", 10_582, 1_449, "mIoU"),
    ("NYUv2", "-", 24_231, 653, "RMSE"),
    ("KITTI", "-", 23_157, 696, "RMSE"),
]
TABLE_METRICS = {
    "accuracy": {"accuracy"},
    "mean per class": {"mean_per_class_accuracy"},
    "AP50": {"ap50", "ap50_easy_medium_hard"},
    "MR-2": {"mr2"},
    "mIoU": {"miou"},
    "RMSE": {"rmse"},
}
WORLD = ["gvb_world_cls", "gvb_world_fine", "gvb_world_det", "gvb_world_seg", "gvb_world_depth"]
REAL_SMALL = ["fashion_mnist", "digits", "lfw_face"]
TASK_DIR = config_dir() / "task"
TASKS = load_tasks(TASK_DIR)
SUITES = suites(TASKS)


def get_task(name: str) -> Any:
    return task_of(TASKS, name)


def get_suite(name: str) -> Any:
    return suite_of(TASKS, name)


def cli_main(argv: list[str]) -> int:
    return verbs(argv, TASK_DIR)


def test_gvb_has_table_31_in_order_with_20_classification_and_6_dense_tasks() -> None:
    gvb = get_suite("gvb")
    assert [spec.title for spec in gvb] == [row[0] for row in TABLE_31]
    assert [spec.type for spec in gvb].count("classification") == 20
    assert [spec.type for spec in gvb[20:]] == [
        "detection", "face_detection", "pedestrian_detection", "segmentation", "depth", "depth",
    ]  # fmt: skip
    assert SUITES["gvb_cls"] + SUITES["gvb_dense"] == SUITES["gvb"]
    assert all(spec.source.kind == "reader" for spec in gvb)


@pytest.mark.parametrize(
    ("title", "classes", "train", "test", "metric"), TABLE_31, ids=[r[0] for r in TABLE_31]
)
def test_gvb_task_matches_table_31(title: str, classes: str, train: int, test: int, metric: str) -> None:
    (spec,) = [spec for spec in get_suite("gvb") if spec.title == title]
    assert (spec.train_size, spec.test_size) == (train, test)
    assert spec.metric in TABLE_METRICS[metric]
    if spec.type in ("classification", "detection"):
        assert spec.num_classes == int(classes)


def test_dense_class_counts_and_mean_per_class_datasets() -> None:
    assert get_task("wider_face").num_classes == 1  # Table 31's 2 counts the background
    assert get_task("voc2012_seg").num_classes == 21  # section 9.1: 20 objects + background
    assert get_task("kitti").num_classes is None
    per_class = {spec.name for spec in get_suite("gvb") if spec.metric == "mean_per_class_accuracy"}
    assert per_class == {"pets", "flowers102", "caltech101", "fgvc_aircraft"}


@pytest.mark.parametrize("name", WORLD)
def test_world_task_follows_the_generator(name: str) -> None:
    spec, dataset = get_task(name), get_dataset(name)
    assert spec.source.kind == "world" and spec.source.name == name
    assert spec.type == dataset.task
    assert (spec.train_size, spec.test_size) == (dataset.sizes["train"], dataset.sizes["test"])
    assert dict(spec.splits) == {"train": "train", "val": "val", "test": "test"}
    assert spec.shard_command() is None
    assert spec.shards_root("/cache") == cache_folder(name, "/cache")
    if dataset.label_space is None:
        assert spec.num_classes is None
        return
    classes = dataset.label_space.classes
    assert spec.num_classes == len(classes) - (dataset.task == "detection" and classes[0] == "background")


@pytest.mark.parametrize("name", ["digits", "lfw_face"])
def test_packaged_sizes_are_the_readers(name: str) -> None:
    spec = get_task(name)
    sizes = [len(open_reader(spec.source.name, None, spec.splits[role])) for role in ("train", "test")]
    assert sizes == [spec.train_size, spec.test_size]
    assert len(open_reader(spec.source.name, None, "train").label_space) == spec.num_classes


@pytest.mark.realdata
def test_fashion_mnist_sizes_are_the_readers() -> None:
    spec = get_task("fashion_mnist")
    reader = open_reader("fashion_mnist", None, "test")
    assert (len(reader), len(reader.label_space)) == (spec.test_size, spec.num_classes)


def test_unknown_task_lists_close_matches() -> None:
    with pytest.raises(UnknownTaskError) as info:
        get_task("cifar")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert message.startswith("unknown task 'cifar'; did you mean ")
    assert "cifar10" in message.split("known:")[0] and "cifar100" in message.split("known:")[0]
    with pytest.raises(UnknownSuiteError, match="did you mean gvb_dense"):
        get_suite("gvb_dens")


def test_suites_resolve() -> None:
    assert set(SUITES) == {"world", "real_small", "gvb", "gvb_cls", "gvb_dense"}
    assert list(SUITES["world"]) == WORLD
    assert list(SUITES["real_small"]) == REAL_SMALL
    assert [len(SUITES[s]) for s in ("gvb", "gvb_cls", "gvb_dense")] == [26, 20, 6]
    assert list(TASKS) == WORLD + REAL_SMALL + list(SUITES["gvb"])
    for suite, names in SUITES.items():
        assert [spec.name for spec in get_suite(suite)] == list(names)
        assert all(suite in get_task(name).suites for name in names)


@pytest.mark.parametrize("name", [n for n, spec in TASKS.items() if spec.source.kind != "world"])
def test_shard_command_matches_the_intern_data_cli(name: str) -> None:
    spec = get_task(name)
    command = shlex.split(spec.shard_command("/data/gvb", "/raw/x") or "")
    assert command[:4] == ["python", "-m", "intern_data", "shard"]
    reader = READERS[spec.source.name]
    assert set(spec.source.options) <= set(inspect.signature(reader.__init__).parameters)
    # `shard` takes no reader options yet: parse what it does take, the options are checked above.
    args = command[4:]
    while "--option" in args:
        at = args.index("--option")
        args = args[:at] + args[at + 2 :]
    parsed = shard_parser().parse_args(["shard", *args])
    assert parsed.reader == spec.source.name
    assert parsed.root == (Path("/raw/x") if spec.source.kind == "reader" else None)
    assert parsed.out == spec.shards_root("/data/gvb") == Path("/data/gvb") / name
    assert parsed.splits == list(dict.fromkeys(spec.splits.values()))


def test_the_composed_task_is_the_registrys(compose_app: Callable[..., Any]) -> None:
    for name in ("gvb_world_cls", "kitti", "fashion_mnist"):
        composed = compose_app("bench", [f"task={name}"]).task
        assert task_from_config(OmegaConf.to_container(composed, resolve=True)) == get_task(name)
    assert get_task("kitti").protocol == {"max_depth": 80.0, "eval_crop": "garg"}


def test_a_task_config_error_names_the_key() -> None:
    with pytest.raises(TaskConfigError, match=r"task.type='boxes'; choose from classification"):
        task_from_config({"name": "x", "type": "boxes", "source": "reader"})
    with pytest.raises(TaskConfigError, match=r"task.root: a shards task needs the shard folder"):
        task_from_config({"name": "shards", "source": "shards", "root": "???"})
    with pytest.raises(TaskConfigError, match=r"holds no index.json"):
        task_from_config({"source": "shards", "root": "/nowhere"})


def test_list_subcommand_prints_every_task(python_m: Callable[..., Any], tmp_path: Path) -> None:
    result = python_m("intern_bench", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["name", "type", "classes", "train", "test", "metric", "source"]
    assert [row.split()[0] for row in rows] == list(TASKS)
    assert "1,281,167" in result.stdout


def test_list_suite_and_unknown_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["list", "--suite", "world"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == WORLD
    assert cli_main(["list", "--suite", "nope"]) == 2
    assert capsys.readouterr().err.startswith("intern_bench list: unknown suite 'nope'")
