"""GV-A's search parts in intern-arch: the space (encoding, validity, size), architectures that build,
train and load like any model, the reward's direction, PPO finding a known best, scaling."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import intern_arch
from intern_arch.models.metanet import metanet_cfg_from_dict, metanet_cfgs
from intern_arch.profile import profile_metanet
from intern_arch.search import (
    DECISIONS,
    PPO,
    BaseStage,
    Controller,
    PPOSettings,
    SearchSpace,
    SearchSpaceError,
    StageChoice,
    fit_width,
    mnas_reward,
    scale_metanet,
)
from intern_arch.search.install import install_model_config

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_BASE = tuple(
    BaseStage(c, d, s) for c, d, s in [(8, 1, 1), (16, 1, 2), (24, 2, 2), (32, 2, 2), (32, 2, 1), (48, 2, 2)]
)
SPACE = SearchSpace(base=TINY_BASE, head_dim=16, stem_width=8, head_width=64)


def test_the_papers_space_has_2_4e14_architectures() -> None:
    assert SearchSpace(base=TINY_BASE).size == 250**6 == 244_140_625_000_000


def test_every_stage_choice_encodes_and_decodes() -> None:
    default = tuple(StageChoice("conv", 4, 0, 1.0) for _ in TINY_BASE)
    for stage in range(SPACE.num_stages):
        for decision in DECISIONS:
            for value in SPACE.options(decision):
                arch = list(default)
                arch[stage] = StageChoice(**{**vars(default[stage]), decision: value})
                tokens = SPACE.encode(tuple(arch))
                assert SPACE.decode(tokens) == tuple(arch)
                assert all(0 <= t < n for t, n in zip(tokens, SPACE.vocab_sizes, strict=True))


def _extremes() -> list[tuple[StageChoice, ...]]:
    rng = random.Random(3)
    widest = tuple(StageChoice("transformer", 6, 2, 1.5) for _ in TINY_BASE)
    narrowest = tuple(StageChoice("conv", 2, -2, 0.5) for _ in TINY_BASE)
    alternating = tuple(StageChoice(("conv", "transformer")[i % 2], 3, -1, 0.75) for i in range(6))
    return [widest, narrowest, alternating, *(SPACE.sample(rng) for _ in range(4))]


@pytest.mark.parametrize("arch", _extremes(), ids=lambda a: "-".join(c.operation[0] for c in a))
def test_sampled_architectures_train_and_load_exactly(arch: tuple[StageChoice, ...], tmp_path: Path) -> None:
    cfg = SPACE.metanet_cfg(arch)
    for stage in cfg.stages:
        assert stage.op == "mbconv" or stage.channels % stage.head_dim == 0  # rounded, not rejected
    torch.manual_seed(0)
    model = intern_arch.create_model("metanet", arch=cfg.as_dict(), num_classes=3)
    x = torch.randn(2, 3, 32, 32)
    model(x).logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    folder = intern_arch.save_pretrained(model, tmp_path / "export")
    loaded = intern_arch.from_pretrained(folder).eval()
    assert loaded.cfg == cfg
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert torch.equal(model(x), loaded(x))


def test_config_round_trip_and_bad_keys() -> None:
    cfg = metanet_cfgs["mnb4"]
    assert metanet_cfg_from_dict(cfg.as_dict()) == cfg
    broken = cfg.as_dict()
    broken["stages"][2]["kernel"] = 5
    with pytest.raises(ValueError, match="stage 2: unknown key"):
        metanet_cfg_from_dict(broken)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expansions": []}, "expansions"),
        ({"operations": ["conv", "mlp"]}, "operations"),
        ({"multipliers": [0.5, -1.0]}, "multipliers"),
        ({"head_dim": 0}, "head_dim"),
        ({"base": [{"channels": 8, "depth": 1, "stride": 1}] * 5}, "base"),
        ({"base": [{"channels": 8, "depth": 1, "stride": 3}] * 6}, "base[0]"),
        ({"width": 3}, "unknown field"),
    ],
)
def test_an_invalid_space_fails_in_one_line_naming_the_field(change: dict, field: str) -> None:
    config = {"base": [vars(b) for b in TINY_BASE], **change}
    with pytest.raises(SearchSpaceError) as raised:
        SearchSpace.from_config(config)
    assert field in str(raised.value) and "\n" not in str(raised.value)


def test_the_reward_falls_with_macs_as_in_mnasnet() -> None:
    target = 600e6
    rewards = [mnas_reward(0.8, macs, target) for macs in (150e6, 300e6, 600e6, 1.2e9, 2.4e9)]
    assert rewards == sorted(rewards, reverse=True)
    assert mnas_reward(0.8, target, target) == pytest.approx(0.8)
    assert mnas_reward(0.8, 2 * target, target) == pytest.approx(0.8 * 2**-0.07)
    assert mnas_reward(0.9, 2 * target, target) > mnas_reward(0.8, target, target)  # accuracy weighs more
    with pytest.raises(ValueError, match="positive"):
        mnas_reward(0.8, 0, target)


def test_ppo_finds_a_known_best_architecture() -> None:
    """Reward = share of tokens equal to a fixed best sequence; 100 updates of 64 samples (2 PPO epochs
    each at lr 0.05: the defaults' 4 epochs at 0.03 get there in 120 updates, at twice the cost)."""
    torch.manual_seed(0)
    best = torch.tensor([random.Random(1).randrange(n) for n in SPACE.vocab_sizes])
    controller = Controller(SPACE.vocab_sizes, hidden=32)
    ppo = PPO(controller, PPOSettings(lr=0.05, epochs=2))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        start = controller(best[None])[0].exp().item()
    for _ in range(100):
        tokens, log_probs = controller.sample(64, generator)
        ppo.update(tokens, log_probs, (tokens == best).float().mean(1))
    with torch.no_grad():
        found = controller(best[None])[0].exp().item()
    assert start == pytest.approx(1 / SPACE.size) and found > 0.5  # from uniform


def test_scaling_keeps_the_rules_and_fits_the_target() -> None:
    cfg = SPACE.metanet_cfg(_extremes()[2])
    scaled = scale_metanet(cfg, 1.5, 1.3)
    assert [s.depth for s in scaled.stages] == [-(-s.depth * 3 // 2) for s in cfg.stages]
    assert all(s.op == "mbconv" or s.channels % s.head_dim == 0 for s in scaled.stages)
    base = profile_metanet(cfg, 32).macs
    fitted = fit_width(cfg, 1.0, 3 * base, 32, steps=8)
    assert fitted.width_coef > 1 and abs(fitted.macs / (3 * base) - 1) < 0.25


def test_an_installed_member_builds_through_its_model_config(tmp_path: Path) -> None:
    cfg = SPACE.metanet_cfg(_extremes()[0])
    member = tmp_path / "searched.json"
    member.write_text(json.dumps({"name": "searched", "img_size": 32, "stages": cfg.as_dict()}))
    path = install_model_config(member, "mine", tmp_path / "model")
    model = instantiate(OmegaConf.load(path).backbone)  # as Hydra reads it
    assert model.cfg == cfg and model.pretrained_cfg["architecture"] == "metanet"
    with pytest.raises(FileExistsError, match="--force"):
        install_model_config(member, "mine", tmp_path / "model")


def test_a_registered_variant_is_listed_built_and_refused_twice() -> None:
    from intern_arch.models.metanet import register_metanet

    cfg = SPACE.metanet_cfg(_extremes()[1])
    register_metanet("searched_test_variant", cfg, input_size=32)
    assert "searched_test_variant" in intern_arch.list_models()
    model = intern_arch.create_model("searched_test_variant", num_classes=2)
    assert model.cfg == cfg and model.pretrained_cfg["input_size"] == (3, 32, 32)
    with pytest.raises(ValueError, match="already registered"):
        register_metanet("searched_test_variant", cfg)
