"""The `python -m intern_*` apps as a user runs them: from any directory, one-line errors, sweeps."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from intern_app import config_dir

from ..conftest import UPA_G_TINY

CONF = config_dir()


@pytest.fixture
def run(python_m: Callable[..., Any]) -> Callable[..., Any]:
    """``run(module, *args, cwd=, root=)``: ``python -m module args`` from ``cwd`` with ``$INTERN_ROOT``."""

    def call(module: str, *args: str, cwd: Path, root: Path | None = None) -> Any:
        return python_m(module, *args, cwd=cwd, env={"INTERN_ROOT": str(root)} if root is not None else None)

    return call


def options(group: str) -> str:
    return ", ".join(sorted(path.stem for path in (CONF / group).glob("*.yaml")))


@pytest.mark.parametrize(
    ("module", "args", "key", "value"),
    [
        ("intern_pretrain", ["stage=upa", "model=mnb15"], "model.backbone.model_name", "mnb15"),
        ("intern_bench", ["task=fashion_mnist", "protocol=lbfgs"], "protocol.name", "lbfgs"),
        ("intern_transfer", ["method=probe", "model=r50"], "method", "probe"),
        ("intern_data", ["+extra=1"], "extra", 1),
    ],
)
def test_cfg_job_prints_the_composed_config_from_any_directory(
    tmp_path: Path, module: str, args: list[str], key: str, value: object, run: Callable[..., Any]
) -> None:
    result = run(module, *args, "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    node = yaml.safe_load(result.stdout)
    for part in key.split("."):
        node = node[part]
    assert node == value
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("module", "override", "expected"),
    [
        ("intern_pretrain", "model=mnb99", f"unknown model 'mnb99' (choose from: {options('model')})"),
        (
            "intern_pretrain",
            "experiment=nope",
            f"unknown experiment 'nope' (choose from: {options('experiment')})",
        ),
        ("intern_bench", "protocol=sgd", f"unknown protocol 'sgd' (choose from: {options('protocol')})"),
        ("intern_pretrain", "foo=1", "unknown config key 'foo' (prefix with + to add a new key)"),
        (
            "intern_pretrain",
            "model.backbone.depth=3",
            "unknown config key 'model.backbone.depth' (prefix with + to add a new key)",
        ),
        (
            "intern_data",
            "data=world,world",
            "'data=world,world' sweeps over values; add -m to run one job per value",
        ),
    ],
)
def test_bad_override_is_one_line_and_exit_2(
    tmp_path: Path, module: str, override: str, expected: str, run: Callable[..., Any]
) -> None:
    result = run(module, override, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"{module}: {expected}"]
    assert result.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_run_writes_its_folder_and_says_what_is_missing(tmp_path: Path, run: Callable[..., Any]) -> None:
    result = run("intern_pretrain", "stage=upg", "model=mnb4", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "intern_pretrain: stage 'upg' is not implemented yet: intern_pretrain.upg.Generalist does not exist "
        "(paper section 7)"
    ]
    folder = Path(result.stdout.split("run folder: ")[1].splitlines()[0])
    assert folder.parent == tmp_path / "runs" / "upg" / "mnb4"
    config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())
    assert config["model"]["name"] == "mnb4"


def test_intern_root_places_the_run_folder(tmp_path: Path, run: Callable[..., Any]) -> None:
    (tmp_path / "cwd").mkdir()
    result = run(
        "intern_data", "data=shards", "data.root=missing", cwd=tmp_path / "cwd", root=tmp_path / "root"
    )
    assert result.returncode == 2
    (folder,) = (tmp_path / "root" / "runs" / "data" / "shards").iterdir()
    assert (folder / ".hydra" / "config.yaml").is_file()
    assert not (tmp_path / "cwd" / "runs").exists()


def test_multirun_sweeps_every_job_and_reports_once(tmp_path: Path, run: Callable[..., Any]) -> None:
    # cifar10 needs shards the user makes: every job fails fast, naming the command that makes them
    result = run(
        "intern_bench",
        "-m",
        "hparams_search=probe_lr_grid",
        "task=cifar10",
        "split=10pct,100pct",
        "protocol.sgd.iterations=10",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("intern_bench: 8 of 8 jobs failed; the first: task 'cifar10' needs shards")
    assert "python -m intern_data shard image_folder" in last
    (sweep,) = (tmp_path / "runs" / "bench" / "cifar10" / "multirun").iterdir()
    jobs = [
        yaml.safe_load((path / ".hydra" / "config.yaml").read_text())
        for path in sweep.iterdir()
        if path.is_dir()
    ]
    assert sorted((job["protocol"]["sgd"]["lrs"][0], job["split"]) for job in jobs) == sorted(
        itertools.product([1e-4, 1e-3, 1e-2, 1e-1], ["10pct", "100pct"])
    )
    assert {job["protocol"]["sgd"]["iterations"] for job in jobs} == {10}
    assert {job["protocol"]["strategy"] for job in jobs} == {"sgd"}


def test_a_sweep_refuses_a_trainer_that_runs_the_command_again(
    tmp_path: Path, intern_root: Path, run: Callable[..., Any]
) -> None:
    """Lightning starts the sharded strategy's rank 1 by running the command again: in a sweep, the
    sweep again. Every job says so in one line before any rank starts (``trainer=ddp_sim`` spawns)."""
    result = run(
        "intern_pretrain", "-m", *UPA_G_TINY, "trainer=fsdp_sim", "seed=0,1", cwd=tmp_path, root=intern_root
    )
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith(
        "intern_pretrain: 2 of 2 jobs failed; the first: trainer=fsdp_sim under --multirun: Lightning "
        "starts ranks 1-1 by running the command again, which here is the whole sweep"
    )


def test_help_lists_the_config_groups(tmp_path: Path, run: Callable[..., Any]) -> None:
    result = run("intern_pretrain", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert f"model: {options('model')} (default: mnb_test)" in result.stdout
    assert "task:" not in result.stdout and "verbs" not in result.stdout


def test_help_lists_verbs_and_only_the_groups_the_app_reads(tmp_path: Path, run: Callable[..., Any]) -> None:
    result = run("intern_data", "--help", cwd=tmp_path)
    assert result.returncode == 0
    groups = [line.split(":")[0].strip() for line in result.stdout.splitlines() if line.startswith("  ")]
    assert {"shard", "split", "labels"} <= {g.split()[0] for g in groups}
    assert {"data", "paths"} <= set(groups)
    assert not {"stage", "model", "experiment", "trainer"} & set(groups)
