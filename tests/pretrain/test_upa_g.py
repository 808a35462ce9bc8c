"""Up-A-G through the app: the mixed optimiser, a run to completion, resume, plain CLIP and DDP on the CPU."""

from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from intern_pretrain.optim import MixedOptimizer, warmup_cosine_scheduler

# A few-step run on 32 px images: 3 steps of 8 per epoch, a small world, a small evaluation task.
TINY = [
    "stage=upa_g",
    "data.sizes={train:48,val:16}",
    "stage.img_size=32",
    "stage.batch_size=8",
    "stage.val_batch_size=16",
    "stage.samples_per_epoch=24",
    "stage.queue_size=32",
    "stage.optim.warmup_steps=2",
    "stage.eval.sizes={train:36,val:18}",
    "trainer.log_every_n_steps=1",
    "evaluate=null",
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One INTERN_ROOT for the module, so the world is generated once."""
    return tmp_path_factory.mktemp("upa_g_root")


def run_app(
    root: Path, run_dir: Path, *overrides: str, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "INTERN_CONF_DIR"}
    env.update(INTERN_ROOT=str(root), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "intern_pretrain", *TINY, *overrides, f"hydra.run.dir={run_dir}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "csv" / "metrics.csv").open() as file:
        return list(csv.DictReader(file))


def load_ckpt(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def reader_position(ckpt: dict[str, Any]) -> tuple[int, int]:
    state = ckpt["ImageTextShardDataModule"]["reader"]
    return state["epoch"], state["batches"]


# ----------------------------------------------------------------------------------- optimiser


def _mixed(a: nn.Module, b: nn.Module, scale: nn.Parameter) -> MixedOptimizer:
    adamw = torch.optim.AdamW(
        [{"params": a.parameters()}, {"params": [scale], "lr": 1e-4, "weight_decay": 0.0}], lr=1e-3
    )
    return MixedOptimizer([adamw, torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)])


def test_mixed_optimizer_steps_both_and_schedulers_see_every_group() -> None:
    torch.manual_seed(0)
    a, b, scale = nn.Linear(4, 3), nn.Linear(4, 3), nn.Parameter(torch.tensor(2.0))
    opt = _mixed(a, b, scale)
    assert len(opt.param_groups) == 3 and all(
        g is h
        for g, h in zip(
            opt.param_groups,
            opt.optimizers[0].param_groups[:2] + opt.optimizers[1].param_groups[:1],
            strict=False,
        )
    )
    sched = warmup_cosine_scheduler(opt, warmup_steps=2, total_steps=10)
    before = [p.detach().clone() for p in (*a.parameters(), *b.parameters(), scale)]
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        opt.zero_grad()
        x = torch.randn(5, 4)
        loss = (a(x) * scale).pow(2).mean() + b(x).pow(2).mean()
        loss.backward()
        return loss

    assert opt.step(closure) is not None and calls == [1]
    after = [p.detach() for p in (*a.parameters(), *b.parameters(), scale)]
    assert all(not torch.equal(x, y) for x, y in zip(before, after, strict=True))
    assert set(opt.optimizers[0].state) | set(opt.optimizers[1].state) == set(opt.state)
    lrs = [g["lr"] for g in opt.param_groups]
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([lr * 2 for lr in lrs])  # warm-up 1/3 -> 2/3
    assert [g["lr"] for g in opt.optimizers[1].param_groups] == pytest.approx([0.1 * 2 / 3])
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * opt.param_groups[0]["lr"])


def test_mixed_optimizer_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    a, b, scale = nn.Linear(4, 3), nn.Linear(4, 3), nn.Parameter(torch.tensor(2.0))
    opt = _mixed(a, b, scale)
    for _ in range(3):
        opt.zero_grad()
        (a(torch.randn(2, 4)).sum() * scale + b(torch.randn(2, 4)).sum()).backward()
        opt.step()
    state = copy.deepcopy(opt.state_dict())
    assert len(state["optimizers"]) == 2 and state["optimizers"][1]["state"]

    a2, b2, scale2 = copy.deepcopy(a), copy.deepcopy(b), copy.deepcopy(scale)
    twin = _mixed(a2, b2, scale2)
    twin.load_state_dict(state)
    for first, second in ((opt, twin),):
        for o1, o2 in zip(first.optimizers, second.optimizers, strict=True):
            for p1, p2 in zip(
                [p for g in o1.param_groups for p in g["params"]],
                [p for g in o2.param_groups for p in g["params"]],
                strict=True,
            ):
                for key, value in o1.state[p1].items():
                    assert torch.equal(torch.as_tensor(value), torch.as_tensor(o2.state[p2][key]))
    x = torch.randn(2, 4)
    for o, (m, n, s) in ((opt, (a, b, scale)), (twin, (a2, b2, scale2))):
        o.zero_grad()
        (m(x).sum() * s + n(x).sum()).backward()
        o.step()
    assert torch.equal(a.weight, a2.weight) and torch.equal(b.weight, b2.weight)
    with pytest.raises(ValueError, match="2"):
        twin.load_state_dict({"optimizers": state["optimizers"][:1]})


def test_mixed_optimizer_rejects_shared_parameters() -> None:
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="two inner"):
        MixedOptimizer([torch.optim.SGD(layer.parameters(), lr=0.1), torch.optim.AdamW(layer.parameters())])


# ----------------------------------------------------------------------------------- the stage


def test_upa_g_runs_to_completion_and_exports(root: Path) -> None:
    from intern_arch import from_pretrained
    from intern_pretrain.stages.upa_g import load_text_side

    run_dir = root / "runs" / "complete"
    run_app(root, run_dir, "trainer.max_epochs=1")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "tokenizer" / "tokenizer.json").is_file()
    export = run_dir / "export"
    assert {p.name for p in export.iterdir()} >= {"config.json", "model.safetensors", "text"}
    assert json.loads((export / "config.json").read_text())["stage"] == "upa_g"
    backbone = from_pretrained(export)
    tower, proj, tokenizer, scale = load_text_side(export)
    with torch.no_grad():
        feats = backbone.forward_head(backbone.forward_features(torch.zeros(2, 3, 32, 32)), pre_logits=True)
        ids, mask, eot = tokenizer.encode_batch(["a photo of a lotus."], tower.cfg.context_length)
        assert proj(feats).shape[1] == tower.embed(ids, mask, eot).shape[1]
    assert scale == pytest.approx(1 / 0.07, rel=0.05)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["stage"], summary["model"], summary["steps"]) == ("upa_g", "mnb_test", 3)
    assert summary["export"] == str(export) and "val/zero_shot_acc" in summary["metrics"]
    rows = metrics_rows(run_dir)
    zero_shot = [float(r["val/zero_shot_acc"]) for r in rows if r.get("val/zero_shot_acc")]
    probe = [float(r["val/probe_acc"]) for r in rows if r.get("val/probe_acc")]
    assert len(zero_shot) == 1 and 0 <= zero_shot[0] <= 1 and len(probe) == 1
    for part in ("cl", "simsiam", "mlm", "sts", "cl/i1t1"):
        assert any(r.get(f"train/{part}") for r in rows), part


def test_resume_continues_steps_and_data_position(root: Path) -> None:
    run_dir = root / "runs" / "resume"
    no_val, mixed = "+trainer.limit_val_batches=0", "stage.optimizer=mixed"
    run_app(root, run_dir, "+trainer.max_steps=4", no_val, mixed)
    first = load_ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert first["global_step"] == 4
    assert reader_position(first) == (1, 1)  # 3 batches per epoch: epoch 1, one batch in

    result = run_app(root, run_dir, "+trainer.max_steps=8", no_val, mixed)
    assert f"resuming from {run_dir / 'checkpoints' / 'last.ckpt'}" in result.stdout
    second = load_ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert second["global_step"] == 8
    assert reader_position(second) == (2, 2)  # continued: 8 = 3 + 3 + 2 batches
    assert len(second["optimizer_states"][0]["optimizers"]) == 2  # AdamW + SGD, both saved
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["resumed_from"].endswith("last.ckpt")


def test_clip_baseline_logs_only_the_contrastive_term(root: Path) -> None:
    run_dir = root / "runs" / "clip"
    run_app(root, run_dir, "experiment=clip_baseline", "+trainer.max_steps=2", "+trainer.limit_val_batches=0")
    logged = {
        key
        for row in metrics_rows(run_dir)
        for key, value in row.items()
        if value and key.startswith("train/")
    }
    assert logged == {"train/loss", "train/cl", "train/cl/i0t0", "train/ics", "train/logit_scale"}
    assert (run_dir / "export" / "text" / "tokenizer.json").is_file()


def test_bf16_mixed_precision_trains_every_term(root: Path) -> None:
    """``precision=bf16`` (Lightning's bf16-mixed autocast, here on the CPU): every loss term is logged
    finite and the export's weights stay fp32."""
    from safetensors.torch import load_file

    run_dir = root / "runs" / "bf16"
    run_app(root, run_dir, "precision=bf16", "+trainer.max_steps=3", "+trainer.limit_val_batches=0")
    assert "precision: bf16-mixed" in (run_dir / "config.yaml").read_text()
    rows = [r for r in metrics_rows(run_dir) if r.get("train/loss")]
    assert rows and all(torch.isfinite(torch.tensor(float(r["train/loss"]))) for r in rows)
    for part in ("cl", "simsiam", "mlm", "sts"):
        assert all(torch.isfinite(torch.tensor(float(r[f"train/{part}"]))) for r in rows), part
    weights = load_file(run_dir / "export" / "model.safetensors")
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}


def test_init_from_names_the_field(compose_app: Callable[..., Any], tmp_path: Path) -> None:
    from intern_pretrain.stages import StageConfigError
    from intern_pretrain.stages.runner import resolve_init_from

    cfg = compose_app("pretrain", ["stage=upa_l", f"stage.init_from={tmp_path / 'nowhere'}"])
    with pytest.raises(StageConfigError, match=r"stage\.init_from="):
        resolve_init_from(cfg)
    cfg = compose_app("pretrain", ["stage=upa_l", "stage.init_from=upa_g", f"paths.root_dir={tmp_path}"])
    with pytest.raises(StageConfigError, match=r"stage\.init_from='upa_g': no upa_g export"):
        resolve_init_from(cfg)
    export = tmp_path / "runs" / "upa_g" / "mnb_test" / "2030-01-01_00-00-00" / "export"
    export.mkdir(parents=True)
    (export / "config.json").write_text("{}")
    assert resolve_init_from(cfg) == export


@pytest.mark.dist
@pytest.mark.slow
def test_ddp_two_cpu_processes(root: Path) -> None:
    run_dir = root / "runs" / "ddp"
    run_app(root, run_dir, "trainer=ddp_sim", "+trainer.max_steps=2", "stage.eval.probe=false", timeout=600)
    ckpt = load_ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 2
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 2


# ----------------------------------------------------------------------------------- kill -9


def _step_of(path: Path) -> int:
    try:
        return int(load_ckpt(path)["global_step"])
    except (OSError, RuntimeError, EOFError, KeyError):  # absent or being written
        return -1


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_or_skipping(root: Path, tmp_path: Path) -> None:
    steps_per_epoch, epochs = 3, 4  # TINY: 24 samples per epoch, batch 8
    run_dir = tmp_path / "run"
    overrides = [f"trainer.max_epochs={epochs}", "callbacks.step_checkpoint.every_n_train_steps=1"]
    command = [sys.executable, "-m", "intern_pretrain", *TINY, *overrides, f"hydra.run.dir={run_dir}"]
    env = {k: v for k, v in os.environ.items() if k != "INTERN_CONF_DIR"}
    env.update(INTERN_ROOT=str(root), OMP_NUM_THREADS="1")
    last = run_dir / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while _step_of(last) < steps_per_epoch + 2 and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed"
    process.kill()  # SIGKILL: no cleanup, no final checkpoint
    process.wait()
    killed = load_ckpt(last)
    step = int(killed["global_step"])
    epoch, batches = reader_position(killed)
    assert steps_per_epoch < step < epochs * steps_per_epoch
    assert epoch * steps_per_epoch + batches == step  # the saved reader position is the saved step's

    resumed = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = load_ckpt(last)
    assert int(final["global_step"]) == epochs * steps_per_epoch  # the step count of an unbroken run


def test_views_follow_the_augment_block() -> None:
    """``color: false`` keeps each view's colours (a crop and a flip only); ``color: true`` adds MoCo
    v2's jitter / greyscale / blur; the second image view and the EDA copy follow ``losses``."""
    from torchvision.transforms import v2

    from intern_pretrain.stages.upa_g import view_transform

    settings = {
        "img_size": 16,
        "losses": {"multi_view_image": True, "multi_view_text": False},
        "augment": {"scale": [1.0, 1.0], "hflip": 0.0, "color": False, "eda_alpha": 0.1,
                    "eda_operations": ["swap"]},
    }  # fmt: skip
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    sample = {"image": image, "text": ["a red gem"]}
    torch.manual_seed(0)
    plain = view_transform(settings)(sample)
    assert set(plain) >= {"image", "image2", "text"} and "text_eda" not in plain
    torch.testing.assert_close(plain["image"], plain["image2"])  # full-size crop, no flip, no colour
    coloured = view_transform({**settings, "augment": {**settings["augment"], "color": True}})
    ops = [type(t) for t in coloured.first.geometry.transforms]
    assert v2.RandomGrayscale in ops and v2.RandomApply in ops
    assert [type(t) for t in view_transform(settings).first.geometry.transforms] == [
        v2.RandomResizedCrop,
        v2.RandomHorizontalFlip,
    ]


def test_mlm_masks_its_own_copy_not_the_contrastive_caption() -> None:
    """With MLM on, the image-text terms see the caption unmasked: they equal those of the same weights
    with MLM off, and MLM's loss comes from a masked copy."""
    import yaml

    import intern_arch
    from intern_pretrain.stages.upa_g import UpaGModule
    from intern_pretrain.text import train_tokenizer

    settings = yaml.safe_load((Path(__file__).parents[2] / "conf" / "stage" / "upa_g.yaml").read_text())
    settings.update(img_size=32, mlm_prob=0.5)
    captions = [
        "a red striped daisy on the grass",
        "two blue gems indoors",
        "a tiny teal spotted fish",
        "a big amber tower in the desert",
        "a plum ringed hoop",
        "three spinners on sand dunes",
    ]
    tokenizer = train_tokenizer(captions * 20, vocab_size=300)
    logged: dict[bool, dict[str, Tensor]] = {}

    def step(mlm: bool, state: dict[str, Tensor] | None) -> dict[str, Tensor]:
        torch.manual_seed(0)
        views = {"multi_view_image": True, "multi_view_text": True}
        losses = {**views, "simsiam": True, "mlm": mlm, "sts": False}
        backbone = intern_arch.create_model("mnb_test", num_classes=0)
        module = UpaGModule(backbone, {**settings, "losses": losses}, tokenizer)
        if state is not None:
            module.load_state_dict(state, strict=False)  # the same towers; no MLM head without MLM
        module.log = lambda name, value, **kwargs: logged.setdefault(mlm, {}).update({name: value})
        module.log_dict = lambda values, **kwargs: logged.setdefault(mlm, {}).update(values)
        torch.manual_seed(1)
        batch = {"image": torch.randn(4, 3, 32, 32), "image2": torch.randn(4, 3, 32, 32),
                 "text": captions[:4], "text_eda": captions[2:]}  # fmt: skip
        module.training_step(batch, 0)
        return module.state_dict()

    state = step(True, None)
    step(False, state)
    assert logged[True]["train/mlm"] > 0 and "train/mlm" not in logged[False]
    for part in ("cl/i0t0", "cl/i1t0", "cl/i0t1", "cl", "simsiam"):
        torch.testing.assert_close(logged[True][f"train/{part}"], logged[False][f"train/{part}"])
