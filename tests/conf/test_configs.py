"""Every option of every config group composes into each primary config that uses the group, every
interpolation resolves, and the trainer, logger and callback configs instantiate."""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

import intern_bench.__main__  # noqa: F401  (registers bench.yaml's run-folder resolver, bench_model)
from intern_app import config_dir

CONF = config_dir()
PRIMARIES = ("pretrain", "transfer", "bench", "data")
# Options of these groups belong to one app: the `python -m intern_<app>` in the file's comment.
OWNED_GROUPS = ("experiment", "hparams_search")
Compose = Callable[..., Any]


def groups_of(primary: str) -> list[str]:
    """The config groups in `primary`'s defaults list, in order."""
    defaults = OmegaConf.load(CONF / f"{primary}.yaml").defaults
    return [next(iter(entry)) for entry in defaults if entry != "_self_"]


def options_of(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def app_of(group: str, option: str) -> str | None:
    match = re.search(r"python -m intern_(\w+)", (CONF / group / f"{option}.yaml").read_text())
    return match.group(1) if match else None


CASES = [
    pytest.param(primary, group, option, id=f"{primary}-{group}={option}")
    for primary in PRIMARIES
    for group in groups_of(primary)
    for option in options_of(group)
    if group not in OWNED_GROUPS or app_of(group, option) == primary
]


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """`cfg` without the hydra node, every interpolation resolved."""
    cfg = cfg.copy()
    with open_dict(cfg):
        del cfg.hydra
    return OmegaConf.to_container(cfg, resolve=True)


def test_pretrain_defaults_order() -> None:
    bases = ["paths", "stage", "model", "data", "trainer", "precision", "logger", "callbacks"]
    overlays = ["experiment", "hparams_search", "debug"]
    assert groups_of("pretrain") == bases + overlays
    defaults = OmegaConf.load(CONF / "pretrain.yaml").defaults
    assert defaults[len(bases)] == "_self_"
    assert OmegaConf.load(CONF / "pretrain.yaml").seed == 0


def test_overlays_win_over_the_primary_and_debug_wins_over_all(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "experiment" / "long.yaml").write_text(
        "# @package _global_\nseed: 7\ntrainer:\n  max_epochs: 30\n"
    )
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        experiment = compose("pretrain", ["experiment=long"])
        debugged = compose("pretrain", ["experiment=long", "debug=default"])
        typed = compose("pretrain", ["experiment=long", "debug=default", "seed=5", "trainer.max_epochs=3"])
    assert (experiment.seed, experiment.trainer.max_epochs) == (7, 30)
    assert (debugged.seed, debugged.trainer.max_epochs) == (7, 1)
    assert (typed.seed, typed.trainer.max_epochs) == (5, 3)


def test_every_group_is_used_and_every_owned_option_names_its_app() -> None:
    groups = {path.name for path in CONF.iterdir() if path.is_dir()}
    assert groups == {group for primary in PRIMARIES for group in groups_of(primary)}
    for group in OWNED_GROUPS:
        assert options_of(group), group
        for option in options_of(group):
            app = app_of(group, option)
            assert app in PRIMARIES and group in groups_of(app), f"{group}/{option}.yaml"


@pytest.mark.parametrize(("primary", "group", "option"), CASES)
def test_option_composes_and_resolves(compose_app: Compose, primary: str, group: str, option: str) -> None:
    cfg = compose_app(primary, [f"{group}={option}"])
    assert cfg.hydra.runtime.choices[group] == option
    values = resolved(cfg)
    node = values.get(group)
    if isinstance(node, dict) and "name" in node:
        assert node["name"] == option, "a config's `name` is its file name"


@pytest.mark.parametrize(
    ("model", "img_size", "drop_path_rate"),
    [
        ("r50", 224, 0.0),
        ("mnb1", 224, 0.2),
        ("mnb4", 256, 0.2),
        ("mnb7", 256, 0.2),
        ("mnb15", 256, 0.3),
        ("mnb_test", 64, 0.0),
    ],
)
def test_model(compose_app: Compose, model: str, img_size: int, drop_path_rate: float) -> None:
    cfg = compose_app("pretrain", [f"model={model}"]).model
    assert cfg.backbone == {
        "_target_": "intern_arch.create_model",
        "model_name": model,
        "drop_path_rate": drop_path_rate,
    }
    assert cfg.img_size == img_size
    assert cfg.source


def test_model_list_is_complete() -> None:
    assert options_of("model") == sorted(["r50", "mnb1", "mnb4", "mnb7", "mnb15", "mnb_test"])


def test_stages_form_a_chain_from_scratch() -> None:
    stages = {name: OmegaConf.load(CONF / "stage" / f"{name}.yaml") for name in options_of("stage")}
    assert set(stages) == {
        "upa",
        "upa_g",
        "upa_l",
        "upe_c",
        "upe_d",
        "upe_s",
        "upe",
        "upa_upe",
        "upg",
        "search",
    }

    def roots(name: str, seen: tuple[str, ...] = ()) -> set[str]:
        assert name not in seen, f"init_from cycle through {name}"
        sources = stages[name].init_from
        if sources is None:
            return {name}
        sources = list(sources) if isinstance(sources, ListConfig) else [sources]
        return set().union(*(roots(source, (*seen, name)) for source in sources))

    for name, stage in stages.items():
        assert stage.name == name and stage.paper_section and stage.description
        assert roots(name) <= {"upa", "upa_g", "upa_upe", "search"}  # search: architectures, no hand-over
    assert stages["upa"].init_from is None and stages["upa_g"].init_from is None


@pytest.mark.parametrize(
    ("launcher_env", "nodes", "devices"),
    [
        ({}, 1, 1),
        ({"GROUP_WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "4"}, 2, 4),  # torchrun --nnodes=2 --nproc-per-node=4
        ({"SLURM_NNODES": "3", "SLURM_NTASKS_PER_NODE": "8"}, 3, 8),  # srun -N 3 --ntasks-per-node=8
    ],
)
def test_multinode_takes_nodes_and_devices_from_the_launcher(
    compose_app: Compose,
    monkeypatch: pytest.MonkeyPatch,
    launcher_env: dict[str, str],
    nodes: int,
    devices: int,
) -> None:
    for key in ("GROUP_WORLD_SIZE", "LOCAL_WORLD_SIZE", "SLURM_NNODES", "SLURM_NTASKS_PER_NODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in launcher_env.items():
        monkeypatch.setenv(key, value)
    trainer = compose_app("pretrain", ["trainer=multinode"]).trainer
    assert (trainer.strategy, trainer.num_nodes, trainer.devices) == ("ddp", nodes, devices)


def test_sweeps_go_to_slurm_through_submitit(compose_app: Compose) -> None:
    cfg = compose_app("pretrain", ["hydra/launcher=submitit_slurm", "hydra.launcher.nodes=2"])
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.hydra.launcher.nodes == 2


@pytest.mark.parametrize(
    ("precision", "expected"), [("fp32", "32-true"), ("bf16", "bf16-mixed"), ("fp16", "16-mixed")]
)
def test_precision_sets_trainer_precision(compose_app: Compose, precision: str, expected: str) -> None:
    assert compose_app("pretrain", [f"precision={precision}"]).trainer.precision == expected


@pytest.mark.parametrize(
    ("trainer", "precision", "strategy", "devices"),
    [
        ("cpu", "fp32", SingleDeviceStrategy, 1),
        ("cpu", "bf16", SingleDeviceStrategy, 1),
        ("ddp_sim", "fp32", DDPStrategy, 2),
    ],
)
def test_cpu_trainers_instantiate(
    compose_app: Compose, tmp_path: Path, trainer: str, precision: str, strategy: type, devices: int
) -> None:
    cfg = compose_app("pretrain", [f"trainer={trainer}", f"precision={precision}"])
    built = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert isinstance(built, Trainer)
    assert type(built.strategy) is strategy
    assert built.num_devices == devices
    assert built.precision == cfg.trainer.precision
    assert Path(built.default_root_dir) == tmp_path
    if trainer == "ddp_sim":
        assert built.strategy._start_method == "spawn"


@pytest.mark.gpu
@pytest.mark.parametrize("trainer", ["gpu", "ddp", "fsdp"])
def test_gpu_trainers_instantiate(compose_app: Compose, trainer: str) -> None:
    cfg = compose_app("pretrain", [f"trainer={trainer}", "precision=bf16"])
    built = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert built.precision == "bf16-mixed"
    assert built.num_devices >= 1


@pytest.mark.parametrize(
    ("logger", "backend"), [("csv", None), ("tensorboard", "tensorboard"), ("wandb", "wandb")]
)
def test_logger_instantiates_under_run_folder(
    compose_app: Compose, tmp_path: Path, logger: str, backend: str | None
) -> None:
    if backend is not None:
        pytest.importorskip(backend, reason=f"logger={logger} needs the `loggers` extra")
    cfg = compose_app("pretrain", [f"logger={logger}"])
    built = instantiate(cfg.logger[logger])
    assert Path(built.save_dir) == tmp_path
    built.log_metrics({"loss": 1.5}, step=0)
    if logger == "csv":
        assert isinstance(built, CSVLogger)
        built.save()
        assert (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[1].startswith("1.5")
    elif logger == "tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        built.finalize("success")
        events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
        assert [(e.step, e.value) for e in events.Scalars("loss")] == [(0, 1.5)]
    else:  # wandb, offline: the run is written under the run folder, nothing is sent
        built.experiment.finish()
        assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))


def test_logger_options() -> None:
    assert options_of("logger") == ["csv", "tensorboard", "wandb"]
    assert OmegaConf.load(CONF / "logger" / "wandb.yaml").wandb.offline is True


def test_callbacks_instantiate(compose_app: Compose, tmp_path: Path) -> None:
    built = instantiate(compose_app("pretrain", ["callbacks=default"]).callbacks)
    checkpoint, lr_monitor = built["model_checkpoint"], built["lr_monitor"]
    assert isinstance(checkpoint, ModelCheckpoint) and isinstance(lr_monitor, LearningRateMonitor)
    assert checkpoint.save_last and Path(checkpoint.dirpath) == tmp_path / "checkpoints"
    assert not compose_app("pretrain", ["callbacks=none"]).callbacks


def test_debug_runs_on_the_cpu_unless_a_trainer_is_named(compose_app: Compose) -> None:
    over_experiment = compose_app("pretrain", ["experiment=upa_mnb4_bf16", "debug=fdr"])
    built = instantiate(over_experiment.trainer, logger=False, enable_progress_bar=False)
    assert built.fast_dev_run is True and built.num_devices == 1
    assert over_experiment.trainer.accelerator == "cpu" and over_experiment.trainer.detect_anomaly
    named = compose_app("pretrain", ["trainer=ddp_sim", "debug=fdr"])
    assert named.trainer.strategy == "ddp_spawn" and named.trainer.fast_dev_run is True


def test_experiment_sets_only_its_choices(compose_app: Compose) -> None:
    cfg = compose_app("pretrain", ["experiment=upa_mnb4_bf16"])
    choices = cfg.hydra.runtime.choices
    assert (choices.stage, choices.model, choices.trainer) == ("upa", "mnb4", "gpu")
    assert cfg.trainer.precision == "bf16-mixed"
    plain = resolved(compose_app("pretrain", ["stage=upa", "model=mnb4", "trainer=gpu", "precision=bf16"]))
    assert resolved(cfg) == plain


def test_probe_lr_grid_is_a_multirun_over_the_protocol_grid(compose_app: Compose) -> None:
    cfg = compose_app("bench", ["hparams_search=probe_lr_grid"])
    assert cfg.hydra.mode == RunMode.MULTIRUN
    swept = re.findall(r"\[([^\]]+)\]", cfg.hydra.sweeper.params["protocol.sgd.lrs"])
    grid = cfg.protocol.sgd.lrs
    assert [float(value) for value in swept] == [lr for lr in grid if math.log10(lr).is_integer()]
    assert cfg.protocol.strategy == "sgd"


def test_linear_probe_grid_follows_the_paper(compose_app: Compose) -> None:
    protocol = compose_app("bench").protocol.sgd

    def log_grid(values: list[float], low: float, high: float) -> None:
        steps = [math.log10(b / a) for a, b in zip(values, values[1:], strict=False)]
        assert values[0] == pytest.approx(low) and values[-1] == pytest.approx(high)
        assert steps == pytest.approx([steps[0]] * len(steps), rel=1e-2)

    log_grid(list(protocol.lrs), 1e-4, 0.1)
    log_grid(list(protocol.weight_decays), 1e-6, 1e-3)
    assert list(protocol.momenta) == [0.9, 0.99]
    assert (protocol.iterations, protocol.batch_size, protocol.nesterov) == (10000, 64, True)
    assert compose_app("bench").split == "100pct"


@pytest.mark.parametrize(
    ("primary", "overrides", "folder"),
    [
        ("pretrain", ["stage=upe_c", "model=mnb4"], "runs/upe_c/mnb4"),
        ("bench", ["task=fashion_mnist"], "runs/bench/fashion_mnist/mnb_test"),
        ("transfer", ["method=ft"], "runs/transfer/gvb_world_cls/ft"),
        ("data", [], "runs/data/world"),
    ],
)
def test_run_folder(
    compose_app: Compose, monkeypatch: pytest.MonkeyPatch, primary: str, overrides: list[str], folder: str
) -> None:
    monkeypatch.setenv("INTERN_ROOT", "/srv/intern")
    run_dir = compose_app(primary, overrides).hydra.run.dir
    assert re.fullmatch(rf"/srv/intern/{folder}/\d{{4}}-\d\d-\d\d_\d\d-\d\d-\d\d", run_dir), run_dir
