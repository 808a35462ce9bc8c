"""Hand-over folders with parts: round trip, a Faster R-CNN started from them, version-1 folders, and a
text part left out (not failed) when its optional dependency is missing."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import intern_arch
from intern_arch import BoxHead, CheckpointError, build_faster_rcnn, load_handover, save_handover
from intern_arch.handover import parts as part_kinds
from intern_arch.necks import FPN

FIXTURES = Path(__file__).parent / "fixtures" / "handover_v1"


def _neck_and_head(backbone: torch.nn.Module) -> tuple[FPN, BoxHead]:
    torch.manual_seed(0)
    return FPN(backbone, 8, extra_max_pool=False, freeze_backbone=True), BoxHead(8, 7, 8, 4, 16)


def test_parts_round_trip_exactly_and_never_store_the_backbone_twice(tmp_path: Path) -> None:
    backbone = intern_arch.create_model("mnb_test", num_classes=0).eval()
    neck, head = _neck_and_head(backbone)
    folder = save_handover(tmp_path / "export", backbone, {"neck": neck, "heads/box": head}, stage="upa_l")
    config = json.loads((folder / "config.json").read_text())
    assert config["parts"] == {
        "neck": {"kind": "fpn", "path": "neck"},
        "heads/box": {"kind": "box_head", "path": "heads/box"},
    }
    assert not any(k.startswith("body.") for k in load_file(str(folder / "neck" / "model.safetensors")))
    loaded = load_handover(folder)
    assert set(loaded.parts) == {"neck", "heads/box"} and set(loaded.heads) == {"box"}
    assert loaded.neck.body.backbone is loaded.backbone  # the neck wraps the loaded backbone
    for mine, theirs in ((neck.fpn, loaded.neck.fpn), (head, loaded.heads["box"])):
        for (k, v), (k2, v2) in zip(mine.state_dict().items(), theirs.state_dict().items(), strict=True):
            assert k == k2 and torch.equal(v, v2), k


def test_faster_rcnn_starts_from_the_neck_and_box_head(tmp_path: Path) -> None:
    backbone = intern_arch.create_model("mnb_test", num_classes=0).eval()
    neck, head = _neck_and_head(backbone)
    loaded = load_handover(save_handover(tmp_path / "export", backbone, {"neck": neck, "heads/box": head}))
    model = build_faster_rcnn(loaded.backbone, 5, min_size=64, max_size=64, neck=loaded.neck,
                              box_head=loaded.heads["box"]).eval()  # fmt: skip
    torch.testing.assert_close(model.backbone.fpn.state_dict(), neck.fpn.state_dict())
    assert model.roi_heads.box_head is loaded.heads["box"]
    assert model.roi_heads.box_predictor.cls_score.out_features == 5
    with torch.no_grad():
        (detections,) = model([torch.rand(3, 64, 64)])
    assert set(detections) == {"boxes", "scores", "labels"}


def test_asking_for_a_part_it_does_not_hold_names_what_it_holds(tmp_path: Path) -> None:
    backbone = intern_arch.create_model("mnb_test", num_classes=0)
    folder = intern_arch.save_pretrained(backbone, tmp_path / "export")
    assert load_handover(folder).parts == {}
    with pytest.raises(CheckpointError, match=r"holds no part \['neck'\] \(it holds: none\)"):
        load_handover(folder, parts=["neck"])


def test_version_1_up_a_l_folder_gives_neck_and_box_head() -> None:
    loaded = load_handover(FIXTURES / "upa_l")
    assert set(loaded.parts) == {"neck", "heads/box"} and loaded.config["stage"] == "upa_l"
    state = load_file(str(FIXTURES / "upa_l" / "neck_head.safetensors"))
    for name, tensor in loaded.neck.fpn.state_dict().items():
        assert torch.equal(tensor, state[f"backbone.fpn.{name}"]), name
    for name, tensor in loaded.heads["box"].state_dict().items():
        assert torch.equal(tensor, state[f"roi_heads.box_head.{name}"]), name
    detector = build_faster_rcnn(loaded.backbone, 3, min_size=64, max_size=64, neck=loaded.neck,
                                 box_head=loaded.heads["box"])  # fmt: skip
    assert detector.backbone.names[-1] == "P6"


def test_version_1_up_a_g_folder_gives_the_text_side() -> None:
    pytest.importorskip("transformers")
    loaded = load_handover(FIXTURES / "upa_g")
    text = loaded.text
    state = load_file(str(FIXTURES / "upa_g" / "text" / "model.safetensors"))
    assert set(text.state_dict()) == set(state)
    assert float(text.logit_scale) == pytest.approx(float(state["logit_scale"]))
    classifier = text.classifier(["red circle", "blue square"])
    with torch.no_grad():
        feats = loaded.backbone.forward_head(loaded.backbone.forward_features(torch.rand(2, 3, 32, 32)), True)
    logits = text.encode_image(feats) @ classifier.t()
    assert classifier.shape == (2, 16) and logits.shape == (2, 2)


def test_text_part_left_out_with_the_reason_when_its_extra_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(part_kinds, "missing_requirements", lambda kind: list(kind.requires))
    monkeypatch.setattr("intern_arch.handover.folder.missing_requirements", lambda kind: list(kind.requires))
    loaded = load_handover(FIXTURES / "upa_g")
    assert loaded.parts == {} and "pip install 'intern-arch[text]'" in loaded.unavailable["text"]
    with pytest.raises(CheckpointError, match=r"part 'text' needs transformers, tokenizers"):
        load_handover(FIXTURES / "upa_g", parts=["text"])


@pytest.mark.skipif("INTERN_SMOKE_EXPORT" not in os.environ, reason="nox -s arch_standalone sets it")
def test_smoke_export_loads_with_what_is_installed() -> None:
    """The Up-A export of ``experiment=smoke`` read by intern-arch as installed: in the
    ``arch_standalone`` session intern-arch alone, so the text side is left out with its reason."""
    loaded = load_handover(os.environ["INTERN_SMOKE_EXPORT"])
    assert set(loaded.parts) | set(loaded.unavailable) == {"text", "neck", "heads/box"}
    assert ("text" in loaded.parts) == (importlib.util.find_spec("transformers") is not None)
    detector = build_faster_rcnn(loaded.backbone, 5, min_size=64, max_size=64, neck=loaded.neck,
                                 box_head=loaded.heads["box"]).eval()  # fmt: skip
    with torch.no_grad():
        (detections,) = detector([torch.rand(3, 64, 64)])
    assert set(detections) == {"boxes", "scores", "labels"}
