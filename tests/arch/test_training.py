"""intern_arch.training: freeze, and the weight-decay split that honours no_weight_decay() anywhere."""

from __future__ import annotations

from torch import nn

from intern_arch import create_model
from intern_arch.training import freeze, no_weight_decay_names, weight_decay_groups


def test_freeze_stops_gradients_and_sets_eval() -> None:
    model = freeze(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).train())
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_no_weight_decay_names_of_a_nested_backbone() -> None:
    wrapper = nn.ModuleDict({"backbone": create_model("mnb_test", num_classes=0), "head": nn.Linear(8, 2)})
    names = no_weight_decay_names(wrapper)
    assert names and names == {f"backbone.{n}" for n in wrapper["backbone"].no_weight_decay()}


def test_weight_decay_groups_split_matrices_from_the_rest() -> None:
    wrapper = nn.ModuleDict({"backbone": create_model("mnb_test", num_classes=0), "head": nn.Linear(8, 2)})
    groups = {g["name"]: g for g in weight_decay_groups(wrapper, 0.05, "image", lr=0.1)}
    assert set(groups) == {"image", "image_no_decay"}
    assert groups["image"]["weight_decay"] == 0.05 and groups["image_no_decay"]["weight_decay"] == 0.0
    assert {g["lr"] for g in groups.values()} == {0.1}
    by_id = {id(p): n for n, p in wrapper.named_parameters()}
    decayed = {by_id[id(p)] for p in groups["image"]["params"]}
    exempt = {by_id[id(p)] for p in groups["image_no_decay"]["params"]}
    assert decayed | exempt == set(by_id.values()) and not decayed & exempt
    assert no_weight_decay_names(wrapper) <= exempt
    assert all(dict(wrapper.named_parameters())[n].ndim > 1 for n in decayed)
