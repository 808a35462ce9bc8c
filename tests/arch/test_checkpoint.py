"""Hand-over folders: exact round trip, no pickle, and errors that name the problem."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import intern_arch
from intern_arch.checkpoint import CheckpointError, load_weights


@pytest.mark.parametrize("name", ["mnb_test", "r50"])
def test_round_trip_is_exact(tmp_path, name: str) -> None:
    torch.manual_seed(0)
    model = intern_arch.create_model(name, num_classes=4).eval()
    folder = intern_arch.save_pretrained(model, tmp_path / "export", stage="upa_g", parent=None)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == name and config["stage"] == "upa_g"
    assert config["pretrained_cfg"]["input_size"] == list(model.pretrained_cfg["input_size"])
    loaded = intern_arch.from_pretrained(folder).eval()
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_new_head_skips_only_the_classifier(tmp_path) -> None:
    model = intern_arch.create_model("mnb_test", num_classes=4)
    folder = intern_arch.save_pretrained(model, tmp_path / "export")
    loaded = intern_arch.from_pretrained(folder, num_classes=9)
    assert loaded.get_classifier().out_features == 9
    torch.testing.assert_close(loaded.stem[0].weight, model.stem[0].weight)


def test_shape_mismatch_names_the_tensor(tmp_path) -> None:
    model = intern_arch.create_model("mnb_test")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["stem.0.weight"] = torch.zeros(3, 3, 3, 3)
    save_file(state, str(tmp_path / "w.safetensors"))
    with pytest.raises(CheckpointError, match=r"'stem\.0\.weight'.*\(3, 3, 3, 3\)"):
        load_weights(model, tmp_path / "w.safetensors")


def test_missing_and_unexpected_keys_are_named(tmp_path) -> None:
    model = intern_arch.create_model("mnb_test")
    state = dict(model.state_dict())
    state.pop("conv_head.0.weight")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "w.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"missing keys \['conv_head\.0\.weight'\].*\['extra\.weight'\]"
    ):
        load_weights(model, tmp_path / "w.safetensors")
    missing, unexpected = load_weights(model, tmp_path / "w.safetensors", strict=False)
    assert missing == ["conv_head.0.weight"] and unexpected == ["extra.weight"]


def test_not_a_handover_folder(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="config.json is missing"):
        intern_arch.from_pretrained(tmp_path)


def test_failed_save_leaves_no_folder(tmp_path, monkeypatch) -> None:
    model = intern_arch.create_model("mnb_test")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("intern_arch.checkpoint.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        intern_arch.save_pretrained(model, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


def test_weights_are_plain_safetensors(tmp_path) -> None:
    model = intern_arch.create_model("mnb_test")
    folder = intern_arch.save_pretrained(model, tmp_path / "export")
    tensors = load_file(str(folder / "model.safetensors"))
    assert tensors.keys() == model.state_dict().keys()
