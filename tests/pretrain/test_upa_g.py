"""Up-A-G: the mixed optimiser, a run to completion with its hand-over, resume, plain CLIP, bf16, DDP on
the CPU, the views, and MLM on its own copy of the caption (a run killed and resumed exactly:
tests/faults/test_run_faults.py)."""

from __future__ import annotations

import copy
import csv
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from intern_pretrain.core import MixedOptimizer
from intern_transfer.schedules import warmup_cosine

pytestmark = pytest.mark.usefixtures("one_thread")
NO_VAL = "+trainer.limit_val_batches=0"


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "csv" / "metrics.csv").open() as file:
        return list(csv.DictReader(file))


def logged_keys(run_dir: Path, prefix: str = "train/") -> set[str]:
    return {
        key for row in metrics_rows(run_dir) for key, value in row.items() if value and key.startswith(prefix)
    }


def load_ckpt(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


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
    inner = opt.optimizers[0].param_groups + opt.optimizers[1].param_groups
    assert len(opt.param_groups) == 3 and all(g is h for g, h in zip(opt.param_groups, inner, strict=True))
    sched = warmup_cosine(opt, total_steps=10, warmup_steps=2)
    sched.step()  # warm-up: the factor goes 0 -> 1/2
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
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5e-3, 0.5e-4, 0.05])
    assert [g["lr"] for g in opt.optimizers[1].param_groups] == pytest.approx([0.05])


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


def test_upa_g_runs_to_completion_and_exports(run_pretrain: Callable[..., Any], tmp_path: Path) -> None:
    from intern_arch import load_handover

    run_dir = tmp_path / "run"
    run_pretrain(run_dir, "trainer.max_epochs=1")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "tokenizer" / "tokenizer.json").is_file()
    export = run_dir / "export"
    assert json.loads((export / "config.json").read_text())["stage"] == "upa_g"
    handover = load_handover(export)
    assert set(handover.parts) == {"text"}
    text = handover.text
    with torch.no_grad():
        feats = handover.backbone.forward_head(
            handover.backbone.forward_features(torch.zeros(2, 3, 32, 32)), True
        )
        assert text.encode_image(feats).shape[1] == text.encode_text(["a photo of a lotus."]).shape[1]
    assert float(text.logit_scale) == pytest.approx(1 / 0.07, rel=0.05)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["stage"], summary["model"], summary["steps"]) == ("upa_g", "mnb_test", 3)
    assert summary["export"] == str(export) and "val/zero_shot_acc" in summary["metrics"]
    rows = metrics_rows(run_dir)
    zero_shot = [float(r["val/zero_shot_acc"]) for r in rows if r.get("val/zero_shot_acc")]
    probe = [float(r["val/probe_acc"]) for r in rows if r.get("val/probe_acc")]
    assert len(zero_shot) == 1 and 0 <= zero_shot[0] <= 1 and len(probe) == 1
    assert {f"train/{part}" for part in ("cl", "simsiam", "mlm", "sts", "cl/i1t1")} <= logged_keys(run_dir)


def test_resume_continues_steps_and_data_position(run_pretrain: Callable[..., Any], tmp_path: Path) -> None:
    """With the paper's mixed optimiser (AdamW + SGD as one): the second run resumes from last.ckpt."""
    run_dir = tmp_path / "run"
    mixed = "experiment=upa_g_mixed_optimizer"
    run_pretrain(run_dir, "+trainer.max_steps=4", NO_VAL, mixed)
    first = load_ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert first["global_step"] == 4
    assert reader_position(first) == (1, 1)  # 3 batches per epoch: epoch 1, one batch in

    run_pretrain(run_dir, "+trainer.max_steps=8", NO_VAL, mixed)
    second = load_ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert second["global_step"] == 8
    assert reader_position(second) == (2, 2)  # continued: 8 = 3 + 3 + 2 batches
    assert len(second["optimizer_states"][0]["optimizers"]) == 2  # AdamW + SGD, both saved
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["resumed_from"].endswith("last.ckpt")
    assert {"lr-AdamW/image", "lr-MixedOptimizer/text"} & logged_keys(run_dir, "lr-") or logged_keys(
        run_dir, "lr"
    )


def test_clip_baseline_logs_only_the_contrastive_term(
    run_pretrain: Callable[..., Any], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_pretrain(run_dir, "experiment=clip_baseline", "+trainer.max_steps=2", NO_VAL)
    assert logged_keys(run_dir) == {"train/loss", "train/cl", "train/cl/i0t0", "train/logit_scale"}
    assert (run_dir / "export" / "text" / "tokenizer.json").is_file()


def test_bf16_mixed_precision_trains_every_term(run_pretrain: Callable[..., Any], tmp_path: Path) -> None:
    """``precision=bf16`` (Lightning's bf16-mixed autocast, here on the CPU): every loss term is logged
    finite and the export's weights stay fp32."""
    from safetensors.torch import load_file

    run_dir = tmp_path / "run"
    run_pretrain(run_dir, "precision=bf16", "+trainer.max_steps=3", NO_VAL)
    assert "precision: bf16-mixed" in (run_dir / "config.yaml").read_text()
    rows = [r for r in metrics_rows(run_dir) if r.get("train/loss")]
    assert rows and all(torch.isfinite(torch.tensor(float(r["train/loss"]))) for r in rows)
    for part in ("cl", "simsiam", "mlm", "sts"):
        assert all(torch.isfinite(torch.tensor(float(r[f"train/{part}"]))) for r in rows), part
    weights = load_file(run_dir / "export" / "model.safetensors")
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}


def test_init_from_names_the_field(tmp_path: Path) -> None:
    from intern_app import config_dir
    from intern_pretrain.app.stages import resolve_init_from
    from intern_pretrain.core import StageConfigError

    resolve = functools.partial(resolve_init_from, stage="upa_l", model="mnb_test", root_dir=tmp_path,
                                conf_dir=config_dir())  # fmt: skip
    with pytest.raises(StageConfigError, match=r"stage\.init_from="):
        resolve(str(tmp_path / "nowhere"))
    with pytest.raises(StageConfigError, match=r"stage\.init_from='upa_g': no upa_g export"):
        resolve("upa_g")
    export = tmp_path / "runs" / "upa_g" / "mnb_test" / "2030-01-01_00-00-00" / "export"
    export.mkdir(parents=True)
    (export / "config.json").write_text("{}")
    assert resolve("upa_g") == export and resolve(None) is None


# ----------------------------------------------------------------------------------- units


def test_views_follow_the_augment_settings() -> None:
    """``color=False`` keeps each view's colours (a crop and a flip only); ``color=True`` adds MoCo v2's
    jitter / greyscale / blur; the caption gets its EDA copy."""
    from torchvision.transforms import v2

    from intern_pretrain.upa_g import EDA, UpaGTransform

    eda = EDA(alpha=0.1, operations=("swap",))
    plain = UpaGTransform(16, eda, scale=(1.0, 1.0), hflip=0.0, color=False)
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    torch.manual_seed(0)
    views = plain({"image": image, "text": ["a red gem shines"]})
    assert set(views) >= {"image", "image2", "text", "text_eda"}
    torch.testing.assert_close(views["image"], views["image2"])  # full-size crop, no flip, no colour
    assert [type(t) for t in plain.geometry.transforms] == [v2.RandomResizedCrop, v2.RandomHorizontalFlip]
    coloured = [type(t) for t in UpaGTransform(16, eda, color=True).geometry.transforms]
    assert v2.RandomGrayscale in coloured and v2.RandomApply in coloured


def test_mlm_masks_its_own_copy_not_the_contrastive_caption() -> None:
    """With MLM on, the image-text terms see the caption unmasked: they equal those of the same weights
    with MLM off, and MLM's loss comes from a masked copy."""
    import intern_arch
    from intern_arch.text import train_tokenizer
    from intern_pretrain.upa_g import UpaGModule
    from intern_pretrain.upa_g.terms import ContrastiveTerm, MaskedLanguageTerm, SimSiamTerm

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
    terms = {
        "cl": functools.partial(ContrastiveTerm, image_views=2, text_views=2),
        "simsiam": functools.partial(SimSiamTerm, proj_dim=32, pred_dim=8),
    }

    def step(mlm: bool, state: dict[str, Tensor] | None) -> dict[str, Tensor]:
        torch.manual_seed(0)
        objective = {
            **terms,
            **({"mlm": functools.partial(MaskedLanguageTerm, mask_prob=0.5)} if mlm else {}),
        }
        module = UpaGModule(
            intern_arch.create_model("mnb_test", num_classes=0), tokenizer, objective=objective,
            optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.1), embed_dim=16,
            text={"width": 16, "layers": 1, "heads": 2, "context_length": 16},
        )  # fmt: skip
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
