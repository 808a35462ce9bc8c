"""Every registered backbone honours the backbone contract and matches the paper's sizes."""

import copy

import pytest
import timm
import torch

import intern_arch
from intern_arch.models import CONTRACT_METHODS, PYRAMID_LEVELS, PYRAMID_STRIDES
from intern_arch.profile import profile_model

SMALL = 64
ALL_MODELS = intern_arch.list_models()
CPU_MODELS = [m for m in ALL_MODELS if m != "mnb15"]  # MN-B15 (1B params) is checked on the meta device


def _device(name: str) -> str:
    return "meta" if name == "mnb15" else "cpu"


def test_registry_lists_the_paper_family() -> None:
    assert set(ALL_MODELS) == {"mnb1", "mnb4", "mnb7", "mnb15", "mnb_test", "r50"}


@pytest.mark.parametrize("name", ALL_MODELS)
def test_contract_shapes(name: str) -> None:
    with torch.device(_device(name)):
        model = intern_arch.create_model(name, num_classes=7).eval()
        x = torch.randn(2, 3, SMALL, SMALL)
    for method in CONTRACT_METHODS:
        assert callable(getattr(model, method)), method
    assert [f["name"] for f in model.feature_info] == list(PYRAMID_LEVELS)
    assert [f["reduction"] for f in model.feature_info] == list(PYRAMID_STRIDES)
    with torch.no_grad():
        pyramid = model.forward_pyramid(x)
        features = model.forward_features(x)
        logits = model.forward_head(features)
        pooled = model.forward_head(features, pre_logits=True)
    assert list(pyramid) == list(PYRAMID_LEVELS)
    for info in model.feature_info:
        fmap = pyramid[info["name"]]
        side = SMALL // info["reduction"]
        assert fmap.shape == (2, info["num_chs"], side, side), info
    assert features.shape[:2] == (2, model.num_features)
    assert logits.shape == (2, 7)
    assert pooled.shape == (2, model.num_features)
    cfg = model.pretrained_cfg
    assert {"input_size", "mean", "std", "interpolation", "crop_pct"} <= set(cfg)


@pytest.mark.parametrize("name", [m for m in ALL_MODELS if m != "mnb_test"])
def test_sizes_match_reference_figures(name: str) -> None:
    """Parameters within 10% and MACs within 15% of the figures each variant follows (see its ``source``)."""
    if name == "r50":
        ref = {"params_m": 25.6, "gmacs": 4.1, "img_size": 224}  # torchvision/timm ResNet-50 figures
    else:
        ref = intern_arch.metanet_cfgs[name].reference
    prof = profile_model(name, ref["img_size"])
    assert prof.params / 1e6 == pytest.approx(ref["params_m"], rel=0.10)
    assert prof.macs / 1e9 == pytest.approx(ref["gmacs"], rel=0.15)


@pytest.mark.parametrize(
    ("name", "paper_params_m", "paper_gmacs"), [("mnb4", 29.8, 4.6), ("mnb7", 78.5, 10.2)]
)
def test_sizes_match_paper_table8(name: str, paper_params_m: float, paper_gmacs: float) -> None:
    prof = profile_model(name, 256)
    assert prof.params / 1e6 == pytest.approx(paper_params_m, rel=0.10)
    assert prof.macs / 1e9 == pytest.approx(paper_gmacs, rel=0.15)


def test_mnb15_is_a_billion_parameters_mostly_in_stage5() -> None:
    with torch.device("meta"):
        model = intern_arch.create_model("mnb15")
    total = sum(p.numel() for p in model.parameters())
    stage5 = sum(p.numel() for p in model.stages[5].parameters())
    assert total == pytest.approx(1.0e9, rel=0.05)
    assert stage5 / total == pytest.approx(0.76, abs=0.02)


def test_timm_registry_builds_intern_models() -> None:
    model = timm.create_model("mnb4", num_classes=10)
    assert isinstance(model, intern_arch.MetaNet)
    assert model.get_classifier().out_features == 10


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model 'mnb99'"):
        intern_arch.create_model("mnb99")


@pytest.mark.parametrize("name", ["mnb_test", "r50"])
def test_grad_checkpointing_matches_plain(name: str) -> None:
    """Outputs, gradients and BatchNorm's running statistics (the recomputation records none) equal."""
    torch.manual_seed(0)
    plain = intern_arch.create_model(name, num_classes=5)
    x = torch.randn(2, 3, SMALL, SMALL)
    outputs, grads, buffers = [], [], []
    for enable in (False, True):
        model = copy.deepcopy(plain)
        model.set_grad_checkpointing(enable)
        out = model(x)
        out.square().sum().backward()
        outputs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        buffers.append(dict(model.named_buffers()))
    torch.testing.assert_close(outputs[0], outputs[1])
    assert grads[0].keys() == grads[1].keys()
    for key in grads[0]:
        torch.testing.assert_close(grads[0][key], grads[1][key], msg=key)
    for key in buffers[0]:
        torch.testing.assert_close(buffers[0][key], buffers[1][key], msg=key)


def test_drop_path_is_off_in_eval() -> None:
    torch.manual_seed(0)
    model = intern_arch.create_model("mnb_test", drop_path_rate=0.5)
    for block in model.modules():  # make residual branches matter so dropping them changes the output
        if isinstance(block, timm.layers.LayerScale):
            block.gamma.data.fill_(1.0)
        if isinstance(block, torch.nn.BatchNorm2d):
            block.weight.data.fill_(1.0)
    x = torch.randn(4, 3, SMALL, SMALL)
    reference = intern_arch.create_model("mnb_test", drop_path_rate=0.0)
    reference.load_state_dict(model.state_dict())
    model.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
        model.train(), reference.train()  # same batch statistics: only drop-path can differ
        torch.manual_seed(1)
        assert not torch.allclose(model.forward_features(x), reference.forward_features(x))


def test_drop_path_rises_linearly() -> None:
    model = intern_arch.create_model("mnb4", drop_path_rate=0.2)
    rates = [m.drop_prob for m in model.modules() if isinstance(m, timm.layers.DropPath)]
    assert rates[-1] == pytest.approx(0.2)
    assert rates == sorted(rates)


def test_channels_last_gives_the_same_output() -> None:
    torch.manual_seed(0)
    model = intern_arch.create_model("mnb_test").eval()
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.no_grad():
        expected = model(x)
        got = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_reset_classifier_and_no_weight_decay() -> None:
    model = intern_arch.create_model("mnb_test")
    model.reset_classifier(3)
    assert model(torch.randn(1, 3, SMALL, SMALL)).shape == (1, 3)
    names = dict(model.named_parameters())
    assert model.no_weight_decay() and all(
        n.endswith("temperature") and n in names for n in model.no_weight_decay()
    )
